"""Training time read back from train.log: the span, the end of each epoch, and the epoch
of one training that cost what another did (RESULTS.md's equal-wall-time rows)."""

from pathlib import Path

import pytest

from icefall_kd.reporting.training_log import (
    PAUSE_SECONDS,
    epoch_end_seconds,
    equal_time_epoch,
    log_span_seconds,
)


def _log(path: Path, lines) -> Path:
    """lines: (seconds after 10:00:00, text); written as the trainer's logging writes them."""
    text = []
    for seconds, message in lines:
        h, rest = divmod(seconds, 3600)
        m, s = divmod(rest, 60)
        text.append(f"2026-12-07 {10 + h:02d}:{m:02d}:{s:02d},123 INFO [trainer.py:357] {message}")
        text.append("  a continuation line without a time stamp")
    path.write_text("\n".join(text) + "\n")
    return path


def test_epoch_ends_count_training_time_only(tmp_path):
    pause = PAUSE_SECONDS + 1000  # a resumed run: not training time
    log = _log(tmp_path / "train.log", [
        (0, "training on cpu, precision fp32"),
        (100, "epoch 1 done; validation: 1.0"),
        (250, "epoch 2 done; validation: 0.5"),
        (250 + pause, "resuming from epoch-2.pt"),
        (250 + pause + 120, "epoch 3 done; validation: 0.4"),
        (250 + pause + 130, "epoch 13 donejunk"),  # not an epoch line
    ])
    assert epoch_end_seconds(log) == {1: 100.0, 2: 250.0, 3: 370.0}
    assert log_span_seconds(log) == 380.0


def test_a_rerun_epoch_keeps_its_last_line(tmp_path):
    log = _log(tmp_path / "train.log", [(0, "start"), (50, "epoch 1 done"), (60, "epoch 1 done")])
    assert epoch_end_seconds(log) == {1: 60.0}


@pytest.mark.parametrize("budget, expected", [(90, 1), (260, 2), (400, 3), (175, 1), (176, 2)])
def test_equal_time_epoch_is_the_nearest_epoch_end(tmp_path, budget, expected):
    # Lines closer together than PAUSE_SECONDS, so that all of the span is training time.
    reference = _log(tmp_path / "reference.log",
                     [(t, "batch") for t in range(0, budget, 50)] + [(budget, "epoch 6 done")])
    log = _log(tmp_path / "train.log", [(0, "start"), (100, "epoch 1 done"),
                                        (250, "epoch 2 done"), (370, "epoch 3 done")])
    # 175 is as far from epoch 1 (100) as from epoch 2 (250): the earlier epoch, never more time.
    assert equal_time_epoch(reference, log) == expected


def test_equal_time_epoch_is_none_without_times(tmp_path):
    log = _log(tmp_path / "train.log", [(0, "start"), (100, "epoch 1 done")])
    no_epochs = _log(tmp_path / "other.log", [(0, "start"), (100, "still in epoch 1")])
    assert equal_time_epoch(tmp_path / "missing.log", log) is None
    assert equal_time_epoch(log, no_epochs) is None
    assert equal_time_epoch(log, tmp_path / "missing.log") is None
