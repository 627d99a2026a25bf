"""local/train_until_converged.py against scripted trainings: it stops at the epoch the rule
names, at the budget otherwise, and a rerun trains nothing and stops at the same epoch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "egs/librispeech/ASR/local/train_until_converged.py"

# A stand-in trainer: writes epoch-1..N.pt it lacks, logging each epoch it trains; and a
# stand-in decoder that writes the scripted dev WER of the epoch it is asked for.
FAKE_TRAIN = r'''
import sys, pathlib
exp = pathlib.Path(sys.argv[sys.argv.index("--exp-dir") + 1])
n = int(sys.argv[sys.argv.index("--num-epochs") + 1])
exp.mkdir(parents=True, exist_ok=True)
for e in range(1, n + 1):
    if not (exp / f"epoch-{e}.pt").exists():
        (exp / f"epoch-{e}.pt").write_text("")
        with open(exp / "trained.log", "a") as f:
            f.write(f"{e}\n")
'''
FAKE_DECODE = r'''
import sys, pathlib, json
from icefall_kd.reporting.result_key import ResultKey
argv = sys.argv
get = lambda flag: argv[argv.index(flag) + 1]
exp, epoch = pathlib.Path(get("--exp-dir")), int(get("--epoch"))
assert get("--avg") == "1" and get("--test-sets") == "dev-clean"
wers = json.loads(get("--scripted"))
chunk = int(get("--chunk-size")) if "--chunk-size" in argv else None
left = int(get("--left-context")) if chunk else None
key = ResultKey(epoch, 1, chunk, left, use_averaged_model=True)
res = exp / "greedy_search"
res.mkdir(parents=True, exist_ok=True)
(res / f"wer-summary-dev-clean-{key.to_suffix()}.txt").write_text(
    f"settings\tWER\ngreedy_search\t{wers[epoch - 1]}\n")
'''


def _run(tmp_path, wers, max_epochs, streaming=True):
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    (tmp_path / "decode.py").write_text(FAKE_DECODE)
    exp = tmp_path / "exp"
    decode = f"{sys.executable} {tmp_path / 'decode.py'} --scripted '{json.dumps(wers)}'"
    if streaming:
        decode += " --chunk-size 8 --left-context 32"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--exp-dir", str(exp), "--max-epochs", str(max_epochs),
         "--decode", decode, "--", sys.executable, str(tmp_path / "train.py"),
         "--exp-dir", str(exp)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    trained = (exp / "trained.log").read_text().split() if (exp / "trained.log").exists() else []
    return int(result.stdout.split()[-1]), json.loads((exp / "convergence.json").read_text()), trained


def test_stops_at_the_first_epoch_below_the_gain_and_reruns_train_nothing(tmp_path):
    wers = [60.0, 40.0, 35.0, 34.5, 20.0]  # epoch 4: 1.4% better than 35.0 -> stop
    epochs, summary, trained = _run(tmp_path, wers, 5)
    assert epochs == 4 and summary["stopped_by"] == "rule" and trained == ["1", "2", "3", "4"]
    assert summary["wers"] == {"1": 60.0, "2": 40.0, "3": 35.0, "4": 34.5}
    assert summary["best_epoch"] == 4
    assert summary["last_relative_gain"] == pytest.approx(0.5 / 35.0)
    again, _, trained = _run(tmp_path, wers, 5)
    assert again == 4 and trained == ["1", "2", "3", "4"]  # nothing retrained


def test_selection_picks_the_best_epoch_not_the_last(tmp_path):
    epochs, summary, _ = _run(tmp_path, [60.0, 40.0, 41.0], 5)
    assert epochs == 3 and summary["best_epoch"] == 2


def test_the_budget_stops_a_curve_that_keeps_improving(tmp_path):
    epochs, summary, trained = _run(tmp_path, [60.0, 40.0, 30.0], 3, streaming=False)
    assert epochs == 3 and summary["stopped_by"].startswith("budget") and len(trained) == 3
    assert summary["last_relative_gain"] == pytest.approx(0.25)


def test_a_training_command_that_sets_the_epochs_is_refused(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--exp-dir", str(tmp_path),
                             "--max-epochs", "3", "--decode", "x", "--", "train.py",
                             "--num-epochs", "4"], capture_output=True, text=True)
    assert result.returncode != 0 and "must not set --num-epochs" in result.stderr
