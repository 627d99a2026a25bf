"""Facts read back from a training's ``train.log``."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# A resumed run appends to the log: a pause longer than this between lines is not training.
PAUSE_SECONDS = 300


# The trainer's line at the end of each epoch (icefall_kd/training/trainer.py).
_EPOCH_DONE = re.compile(r"\bepoch (\d+) done\b")


def _stamped_lines(path: Path) -> List[Tuple[datetime.datetime, str]]:
    stamped = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            stamped.append((datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"), line))
        except ValueError:
            continue
    return stamped


def _training_seconds(stamped: List[Tuple[datetime.datetime, str]]) -> List[float]:
    """Seconds of training up to each line: steps of PAUSE_SECONDS or more are not counted."""
    elapsed, total = [0.0], 0.0
    for (a, _), (b, _) in zip(stamped, stamped[1:]):
        step = (b - a).total_seconds()
        total += step if step < PAUSE_SECONDS else 0.0
        elapsed.append(total)
    return elapsed


def log_span_seconds(path: Path) -> Optional[float]:
    """Seconds a training log covers, pauses between runs left out; None with fewer than two
    time-stamped lines."""
    stamped = _stamped_lines(path)
    if len(stamped) < 2:
        return None
    return _training_seconds(stamped)[-1]


def epoch_end_seconds(path: Path) -> Dict[int, float]:
    """{epoch: training seconds from the log's first line to that epoch's "epoch N done"
    line}, pauses between resumed runs left out as in :func:`log_span_seconds`. An epoch
    logged twice (a rerun) keeps its last line."""
    stamped = _stamped_lines(path)
    ends = {}
    for (_, line), seconds in zip(stamped, _training_seconds(stamped)):
        match = _EPOCH_DONE.search(line)
        if match:
            ends[int(match.group(1))] = seconds
    return ends


def equal_time_epoch(reference_log: Path, log: Path) -> Optional[int]:
    """The epoch of ``log`` whose end came after the training time closest to the whole of
    ``reference_log`` (e.g. a Zipformer checkpoint that cost what the Conformer's training
    did); None when either log has no such time."""
    budget = log_span_seconds(reference_log) if Path(reference_log).is_file() else None
    ends = epoch_end_seconds(log) if Path(log).is_file() else {}
    if not budget or not ends:
        return None
    return min(ends, key=lambda epoch: (abs(ends[epoch] - budget), epoch))
