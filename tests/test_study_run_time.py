"""The study's wall time in RESULTS.md (icefall_kd/reporting/study.py) from study.sh's
run-time records: sums and labels checked against hand-made records."""

import pytest

from icefall_kd.reporting.study import run_time_lines, study_runs

HEADER = "stages\tstarted\tlast_seen\tstatus\tcpus\tcommit\n"


def write(folder, name, row):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(HEADER + row + "\n")


def test_runs_are_summed_in_start_order_and_labelled(tmp_path):
    run_time = tmp_path / "run-time"
    # Written out of order on purpose: the table follows the start times.
    write(run_time, "b.tsv", "3-6\t1800007200\t1800010800\twriting-results\t2\tabc1234")
    write(run_time, "a.tsv", "1-2\t1800000000\t1800005400\trunning\t2\tabc1234")
    runs = study_runs(tmp_path)
    assert [r.seconds for r in runs] == [5400, 3600]
    lines = run_time_lines(runs)
    assert lines[0].startswith("Wall time of the study: 2.5 hours in 2 runs of study.sh on 2 CPUs")
    assert lines[4] == "| 1 | 1-2 | 2027-01-15 08:00 | abc1234 | 90.0 | stopped from outside |"
    assert lines[5] == "| 2 | 3-6 | 2027-01-15 10:00 | abc1234 | 60.0 | this run, writing RESULTS.md |"
    # Control: a finished run reads as finished, and no records give no lines.
    write(run_time, "c.tsv", "0-0\t1800020000\t1800020060\tfinished\t2\tabc1234")
    assert run_time_lines(study_runs(tmp_path))[-1].endswith("| 1.0 | finished |")
    assert run_time_lines(study_runs(tmp_path / "none")) == []


@pytest.mark.parametrize("text", ["", HEADER, HEADER + "1-2\tyesterday\t5\trunning\t2\tx\n",
                                  "a\tb\n1\t2\n"])
def test_a_damaged_record_names_its_file(tmp_path, text):
    (tmp_path / "run-time").mkdir()
    path = tmp_path / "run-time" / "1-2.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"run-time/1-2\.tsv"):
        study_runs(tmp_path)
