"""Where a running study.sh stands: every training folder under ``study/`` with its
dev-clean WER per epoch (the decodes train_until_converged.py writes), its best epoch, the
newest saved update and whether a summary says it has stopped. Read from files only, so it
can be run at any time beside the study (``local/study_progress.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from icefall_kd.reporting.learning_curve import epoch_wers
from icefall_kd.reporting.study import summary
from icefall_kd.training.checkpoint import batch_checkpoints

# study.sh's order: teachers, baselines, stage 3's search, then the two designs.
_ORDER = ("teacher", "baseline-", "select/ft1-", "select/ft2-", "ft1-", "ft2-", "control-",
          "scratch1-", "scratch2-")


def _order_key(name: str):
    rank = next((i for i, prefix in enumerate(_ORDER) if name.startswith(prefix)), len(_ORDER))
    return rank, name


def _newest_update(exp_dir: Path) -> Optional[int]:
    newest = batch_checkpoints(exp_dir)[:1]  # checkpoint-<batch>.pt, newest first
    return int(newest[0].stem.split("-")[1]) if newest else None


def _state(exp_dir: Path) -> str:
    budget, converged = summary(exp_dir, "budget.json"), summary(exp_dir)
    if budget is not None:
        epochs = budget["epochs"]
        return f"budget of {epochs} epoch{'s' if epochs != 1 else ''} done"
    if converged is not None:
        text = (f"stopped at epoch {converged['epochs']} "
                f"({'2% rule' if converged['stopped_by'] == 'rule' else 'budget'})")
        # study.sh's stage 2 trains a converged baseline on to the slowest seed's epochs.
        newer = [p for p in exp_dir.glob("*.pt")
                 if p.stat().st_mtime > (exp_dir / "convergence.json").stat().st_mtime]
        return text + (", training on" if newer else "")
    return "training" if any(exp_dir.glob("*.pt")) else "not started"


def progress_lines(study_dir: Path, chunk: int, left: int) -> List[str]:
    """A Markdown table, one row per training folder (those with a train.log); the
    teachers' dev WER is full context, every other folder's streaming at ``chunk`` frames
    with ``left`` frames of left context (study.sh's decoding)."""
    study_dir = Path(study_dir)
    folders = sorted((p.parent for p in study_dir.glob("**/train.log")),
                     key=lambda p: _order_key(p.relative_to(study_dir).as_posix()))
    if not folders:
        return [f"{study_dir}: no training has started (no */train.log)"]
    lines = ["| folder | dev-clean WER by epoch | best (epoch) | newest saved update | state |",
             "|---|---|---:|---:|---|"]
    for folder in folders:
        name = folder.relative_to(study_dir).as_posix()
        streaming = not name.startswith("teacher")
        wers = epoch_wers(folder, "dev-clean", chunk if streaming else None,
                          left if streaming else None)
        # The earlier epoch on a tie, as selection on dev picks.
        best = min(wers, key=lambda e: (wers[e], e)) if wers else None
        update = _newest_update(folder)
        lines.append(f"| {name} | {' '.join(f'{w:.2f}' for w in wers.values()) or '-'} | "
                     f"{f'{wers[best]:.2f} ({best})' if best is not None else '-'} | "
                     f"{update if update is not None else '-'} | {_state(folder)} |")
    return lines
