"""Facts read back from a training's ``train.log``."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional

# A resumed run appends to the log: a pause longer than this between lines is not training.
PAUSE_SECONDS = 300


def log_span_seconds(path: Path) -> Optional[float]:
    """Seconds a training log covers, pauses between runs left out; None with fewer than two
    time-stamped lines."""
    stamps = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            stamps.append(datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
    if len(stamps) < 2:
        return None
    steps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    return sum(step for step in steps if step < PAUSE_SECONDS)
