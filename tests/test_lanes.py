"""local/lanes.sh, the part of run.sh and study.sh that runs commands side by side: the queue
runs two jobs at a time, records every command in queue order whatever order the jobs end in,
runs a job's commands in sequence, and stops at a failed job; lanes record their commands in
the order they were started, not the order they ended."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

LANES = Path(__file__).resolve().parents[1] / "egs/librispeech/ASR/local/lanes.sh"

HARNESS = """set -eou pipefail
parallel_training=$1; num_gpus=0; commands=$2; : > "$commands"
log() { :; }
end_stage() { :; }
record() { printf '%q ' "$@" | sed 's/ $//' >> "$commands"; echo >> "$commands"; }
. {lanes}
"""


def run_harness(tmp_path: Path, body: str, parallel: bool = True) -> subprocess.CompletedProcess:
    script = tmp_path / "harness.sh"
    script.write_text(HARNESS.replace("{lanes}", str(LANES)) + body)
    return subprocess.run(["bash", str(script), "true" if parallel else "false",
                           str(tmp_path / "commands.txt")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


# A job that notes when it starts and ends (in a shared file, one line each), and sleeps.
JOB = "sh -c 'echo start $0 >> events; sleep $1; echo end $0 >> events'"


def concurrency(events: list) -> int:
    running = most = 0
    for line in events:
        running += 1 if line.startswith("start") else -1
        most = max(most, running)
    return most


@pytest.mark.parametrize("parallel", [True, False])
def test_queue_runs_two_at_a_time_and_records_in_queue_order(tmp_path, parallel):
    # Job 1 is the slowest, so jobs end in another order than they were queued.
    body = "\n".join(f"queue_job {JOB} {name} {seconds}" for name, seconds in
                     [("a", 1.5), ("b", 0.2), ("c", 0.2), ("d", 0.2)]) + "\nrun_queued_jobs\n"
    result = run_harness(tmp_path, body, parallel)
    assert result.returncode == 0, result.stderr
    events = (tmp_path / "events").read_text().split()
    events = [" ".join(pair) for pair in zip(events[::2], events[1::2])]
    assert sorted(e for e in events if e.startswith("end")) == ["end a", "end b", "end c", "end d"]
    assert concurrency(events) == (2 if parallel else 1)
    if parallel:
        assert events.index("end a") > events.index("end b")  # really out of order
    recorded = (tmp_path / "commands.txt").read_text().splitlines()
    assert [line.split()[-2] for line in recorded] == ["a", "b", "c", "d"]
    prefix = "OMP_NUM_THREADS=1 " if parallel else ""
    assert all(line.startswith(prefix + "sh -c") for line in recorded)
    # The recorded line runs the same command when pasted into a shell.
    pasted = subprocess.run(["bash", "-c", recorded[1]], cwd=tmp_path, capture_output=True)
    assert pasted.returncode == 0 and (tmp_path / "events").read_text().endswith("end b\n")


def test_queue_job_commands_run_in_sequence_and_output_is_marked(tmp_path):
    body = ("queue_job sh -c 'sleep 0.3; echo first' ';' echo 'second  word'\n"
            "queue_job echo other\nrun_queued_jobs\n")
    result = run_harness(tmp_path, body)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[job 1] first" in lines and "[job 1] second  word" in lines and "[job 2] other" in lines
    assert lines.index("[job 1] first") < lines.index("[job 1] second  word")
    assert len((tmp_path / "commands.txt").read_text().splitlines()) == 3


@pytest.mark.parametrize("fails", [True, False])
def test_a_failed_job_stops_the_queue(tmp_path, fails):
    # Job 1 fails (or, the control, succeeds) at once; job 2 keeps the second worker busy,
    # so job 3 would start after job 1 unless the failure stops the queue.
    body = (f"queue_job {'false' if fails else 'true'} ';' touch after-failure\n"
            f"queue_job sleep 1\nqueue_job touch third\nrun_queued_jobs\necho reached\n")
    result = run_harness(tmp_path, body)
    assert (result.returncode != 0) == fails, result.stderr
    assert (tmp_path / "third").exists() != fails
    assert (tmp_path / "after-failure").exists() != fails  # the rest of a failed job is skipped
    assert ("reached" in result.stdout) != fails
    if fails:
        assert "job 1 failed: false" in result.stderr


def test_lanes_record_in_start_order(tmp_path):
    body = ("in_lane slow train slow.log sh -c 'sleep 1; echo slow'\n"
            "in_lane fast train fast.log echo fast\nwait_lanes\n")
    result = run_harness(tmp_path, body)
    assert result.returncode == 0, result.stderr
    recorded = (tmp_path / "commands.txt").read_text().splitlines()
    assert [line.split(">>")[1].split()[0] for line in recorded] == ["slow.log", "fast.log"]
    assert (tmp_path / "slow.log").read_text() == "slow\n"


def test_a_failed_lane_fails_the_wait(tmp_path):
    result = run_harness(tmp_path, "in_lane broken train b.log false\nwait_lanes\necho reached\n")
    assert result.returncode == 1 and "lane 'broken' failed" in result.stderr
    assert "reached" not in result.stdout


@pytest.mark.parametrize("stopped", [True, False])
def test_a_script_stopped_by_a_signal_does_not_record_its_stage_as_complete(tmp_path, stopped):
    """end_stage (run.sh: a stage's wall time; study.sh: the run's "finished") runs when the
    script ends normally, not when it is stopped from outside; the lanes are stopped too."""
    body = HARNESS.replace("end_stage() { :; }", "end_stage() { echo complete > ended; }")
    script = tmp_path / "harness.sh"
    script.write_text(body.replace("{lanes}", str(LANES))
                      + "in_lane slow sh -c 'echo $$ > lane.pid; exec sleep 30'\n"
                      + ("wait_lanes\n" if stopped else "sleep 1; kill \"${lane_pids[@]}\"\n"))
    process = subprocess.Popen(["bash", str(script), "true", str(tmp_path / "commands.txt")],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not (tmp_path / "lane.pid").is_file():
        assert time.time() < deadline, "the lane did not start"
        time.sleep(0.1)
    if stopped:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert (tmp_path / "ended").is_file() == (not stopped)
    if stopped:
        assert process.returncode != 0
        lane = int((tmp_path / "lane.pid").read_text())
        time.sleep(0.5)
        with pytest.raises(ProcessLookupError):  # the exit trap stopped the lane
            os.kill(lane, 0)
