"""local/study_progress.py (icefall_kd/reporting/study_progress.py): the table of a study
folder built by hand, checked row by row: WERs from the decodes at the study's settings
only, the best epoch (the earlier on a tie), the newest saved update, each state."""

import json
import os
from pathlib import Path

from icefall_kd.reporting.study_progress import progress_lines

STREAMING = "_avg-1_chunk-8_left-context-32_use-averaged-model"


def decoded(folder: Path, epoch: int, wer: float, suffix: str = STREAMING) -> None:
    (folder / "greedy_search").mkdir(parents=True, exist_ok=True)
    (folder / f"epoch-{epoch}.pt").write_bytes(b"")
    (folder / "greedy_search" / f"wer-summary-dev-clean-epoch-{epoch}{suffix}.txt").write_text(
        f"settings\tWER\ngreedy_search\t{wer}\n")


def training(study: Path, name: str) -> Path:
    folder = study / name
    folder.mkdir(parents=True)
    (folder / "train.log").write_text("")
    return folder


def test_each_folder_reads_its_own_decodes_and_state(tmp_path):
    study = tmp_path / "study"
    teacher = training(study, "teacher")
    decoded(teacher, 1, 91.22, "_avg-1_use-averaged-model")  # full context
    decoded(teacher, 2, 40.0, "_avg-1_use-averaged-model")
    (teacher / "checkpoint-1200.pt").write_bytes(b"")
    baseline = training(study, "baseline-seed1")
    for epoch, wer in ((1, 95.36), (2, 30.0), (3, 30.0)):
        decoded(baseline, epoch, wer)
    decoded(baseline, 3, 1.0, "_avg-1_chunk-16_left-context-32_use-averaged-model")  # other chunk
    (baseline / "convergence.json").write_text(json.dumps({"epochs": 3, "stopped_by": "rule"}))
    old = (baseline / "convergence.json").stat().st_mtime - 10
    for pt in baseline.glob("*.pt"):
        os.utime(pt, (old, old))
    candidate = training(study, "select/ft1-hidden0.3")
    decoded(candidate, 1, 21.0)
    (candidate / "budget.json").write_text(json.dumps({"epochs": 1}))
    training(study, "control-seed1")
    rows = progress_lines(study, 8, 32)[2:]
    assert rows == [
        "| teacher | 91.22 40.00 | 40.00 (2) | 1200 | training |",
        "| baseline-seed1 | 95.36 30.00 30.00 | 30.00 (2) | - | stopped at epoch 3 (2% rule) |",
        "| select/ft1-hidden0.3 | 21.00 | 21.00 (1) | - | budget of 1 epoch done |",
        "| control-seed1 | - | - | - | not started |",
    ]
    # Control: a checkpoint written after the summary reads as training on.
    (baseline / "epoch-4.pt").write_bytes(b"")
    assert progress_lines(study, 8, 32)[3].endswith("stopped at epoch 3 (2% rule), training on |")


def test_a_study_not_started_says_so(tmp_path):
    assert progress_lines(tmp_path / "study", 8, 32) == [
        f"{tmp_path / 'study'}: no training has started (no */train.log)"]
