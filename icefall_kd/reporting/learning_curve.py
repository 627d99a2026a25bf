"""Learning curves: dev-set WER against training updates, and the rule that says when a
training has converged.

A point is one epoch checkpoint ``epoch-E.pt`` decoded as ``decode.py --epoch E --avg 1``
(with the running-average weights, i.e. the model averaged over epoch E). Its x value is the
number of optimiser updates the model has had in total: the updates of its own training plus,
for a model started with ``--init-from DIR --init-epoch N``, those of DIR up to epoch N (and
so on up the chain), so that a student's curve continues its baseline's. A model that
continued its start's training (``--init-state training``) counts on from it: its own count
already includes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from icefall_kd.reporting.result_key import ResultKey

# The convergence rule of issue 17: one more epoch improves dev WER by less than this, relative.
MIN_RELATIVE_GAIN = 0.02


@dataclass(frozen=True)
class CurvePoint:
    epoch: int
    updates: int  # total optimiser updates, the --init-from chain included
    wer: float  # %


def _checkpoint_summary(path: Path) -> dict:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    args = state.get("args") or {}
    if not isinstance(args, dict):
        args = vars(args)
    return {"updates": int(state["batch_idx_train"]), "init_from": args.get("init_from"),
            "init_epoch": args.get("init_epoch"), "init_state": args.get("init_state")}


def total_updates(exp_dir: Path, epoch: int, recipe_dir: Path = Path("."),
                  _seen: Optional[set] = None) -> int:
    """Updates of ``exp_dir/epoch-E.pt`` including those of the models it started from.
    ``--init-from`` folders are read relative to ``recipe_dir`` (run.sh's working folder)."""
    seen = _seen or set()
    key = (str(exp_dir), epoch)
    if key in seen:
        raise ValueError(f"{exp_dir}: --init-from chain loops back to {key}")
    seen.add(key)
    path = Path(exp_dir) / f"epoch-{epoch}.pt"
    summary = _checkpoint_summary(path)
    init_from, init_epoch = summary["init_from"], summary["init_epoch"]
    if (not init_from or init_from == "scratch" or not init_epoch
            or summary["init_state"] == "training"):
        return summary["updates"]
    parent = Path(init_from)
    if not parent.is_absolute():
        parent = recipe_dir / parent
    return summary["updates"] + total_updates(parent, int(init_epoch), recipe_dir, seen)


def epoch_wers(exp_dir: Path, test_set: str, chunk_size: Optional[int],
               left_context: Optional[int]) -> Dict[int, float]:
    """WER by epoch from ``exp_dir``'s greedy wer-summary files (one symbol per frame,
    --avg 1, averaged model) at that chunk (None: full context), for the epochs whose
    checkpoint is there."""
    wers = {}
    res_dir = Path(exp_dir) / "greedy_search"
    for path in sorted(res_dir.glob(f"wer-summary-{test_set}-epoch-*.txt")):
        suffix = path.name[len(f"wer-summary-{test_set}-"):-len(".txt")]
        try:
            key = ResultKey.parse(suffix)
        except ValueError:
            continue
        if (key.avg != 1 or not key.use_averaged_model or key.max_sym_per_frame != 1
                or (key.chunk_size, key.left_context) != (chunk_size, left_context)):
            continue
        if (Path(exp_dir) / f"epoch-{key.epoch}.pt").is_file():
            wers[key.epoch] = float(path.read_text().splitlines()[1].split("\t")[1])
    return dict(sorted(wers.items()))


def read_curve(exp_dir: Path, test_set: str, chunk_size: Optional[int],
               left_context: Optional[int], recipe_dir: Path = Path(".")) -> List[CurvePoint]:
    """The curve of ``exp_dir`` (epoch_wers) with each epoch's total updates, by epoch."""
    return [CurvePoint(epoch, total_updates(Path(exp_dir), epoch, recipe_dir), wer)
            for epoch, wer in epoch_wers(exp_dir, test_set, chunk_size, left_context).items()]


def relative_gain(previous_best: float, wer: float) -> float:
    """How much ``wer`` improves on ``previous_best``, relative (negative: worse)."""
    return (previous_best - wer) / previous_best if previous_best > 0 else 0.0


def converged(wers: Sequence[float], min_gain: float = MIN_RELATIVE_GAIN) -> bool:
    """True once the last epoch improved the best WER of the epochs before it by less than
    ``min_gain`` relative (issue 17's rule); needs at least two epochs. The epochs before
    must have gone below 100% WER: until then the model emits nothing or only errors (a
    transducer early in training), and a flat curve there means it has not started."""
    if len(wers) < 2 or min(wers[:-1]) >= 100.0:
        return False
    return relative_gain(min(wers[:-1]), wers[-1]) < min_gain


def best_epoch(points: Sequence[CurvePoint]) -> Optional[CurvePoint]:
    """The point of lowest WER (the earlier one on a tie): what selection on dev picks."""
    return min(points, key=lambda p: (p.wer, p.epoch)) if points else None


def plot_learning_curves(curves: Dict[str, List[CurvePoint]], path: Path, test_set: str) -> bool:
    """One line per model: WER against total updates. False when there is nothing to plot."""
    curves = {name: points for name, points in curves.items() if points}
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        ax.plot([p.updates for p in points], [p.wer for p in points], marker="o", markersize=3,
                label=name)
    ax.set_xlabel("optimiser updates (students include their starting model's)")
    ax.set_ylabel(f"WER % (greedy, {test_set})")
    ax.set_title(f"Learning curves on {test_set}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
