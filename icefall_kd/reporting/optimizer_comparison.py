"""RESULTS-optimizer.md (``optimizer_study.sh``): one model trained with several optimisers.

Each arm is an experiment folder that ``local/train_until_converged.py`` trained to the same
fixed budget, with every epoch decoded on dev-clean (greedy search, ``--avg 1
--use-averaged-model``, full context). The table gives each epoch's dev-clean WER; the
comparison is at the last epoch of the budget (the same number of epochs, so the same data
and close to the same number of updates: ``updates`` says), against the first arm, by a paired
bootstrap over the dev-clean utterances (:mod:`icefall_kd.reporting.paired_bootstrap`). One
training seed per arm: the interval covers the sampling of utterances, not seed-to-seed
spread, and the text says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from icefall_kd.reporting import paired_bootstrap as pb
from icefall_kd.reporting.learning_curve import CurvePoint, plot_learning_curves, read_curve
from icefall_kd.reporting.result_key import ResultKey

TEST_SET = "dev-clean"


@dataclass(frozen=True)
class Arm:
    label: str  # e.g. "ScaledAdam, peak lr 0.045"
    exp_dir: Path


def recogs_path(exp_dir: Path, epoch: int, test_set: str = TEST_SET) -> Path:
    """decode.py's per-utterance output of ``--epoch E --avg 1 --use-averaged-model true``."""
    key = ResultKey(epoch, 1, None, None, use_averaged_model=True)
    return Path(exp_dir) / "greedy_search" / f"recogs-{test_set}-{key.to_suffix()}.txt"


def _verdict(label: str, against: str, interval: pb.Interval) -> str:
    if interval.low > 0:
        return f"- {label}: fewer errors than {against} (the interval is above zero)."
    if interval.high < 0:
        return f"- {label}: more errors than {against} (the interval is below zero)."
    return f"- {label}: no difference from {against} established (the interval includes zero)."


def comparison_lines(arms: Sequence[Arm], epochs: int, plot: Optional[Path] = None,
                     recipe_dir: Path = Path("."), resamples: int = pb.DEFAULT_RESAMPLES) -> List[str]:
    """Markdown lines: the per-epoch table, each later arm against ``arms[0]`` at ``epochs``
    (95% percentile interval of the relative WER reduction), and the plot when ``plot`` is
    given. Raises ``SystemExit`` naming the folder when an arm lacks an epoch's decode."""
    if len(arms) < 2:
        raise ValueError("compare at least two arms")
    curves = {}
    for arm in arms:
        points = read_curve(arm.exp_dir, TEST_SET, None, None, recipe_dir)
        have = [p.epoch for p in points]
        if have[:epochs] != list(range(1, epochs + 1)):
            raise SystemExit(f"{arm.exp_dir}: dev-clean decodes of epochs 1..{epochs} expected "
                             f"(greedy, --avg 1, averaged model), found epochs {have}; run "
                             "optimizer_study.sh's stage 1 to make them")
        curves[arm.label] = points[:epochs]
    base = arms[0]
    base_errors = pb.utterance_errors(recogs_path(base.exp_dir, epochs))
    header = ["optimiser", *[f"epoch {e}" for e in range(1, epochs + 1)],
              f"updates at epoch {epochs}",
              f"rel. WER reduction vs {base.label}, epoch {epochs}, 95% CI"]
    lines = [f"| {' | '.join(header)} |", "|---|" + "---:|" * (len(header) - 1)]
    verdicts = []
    for arm in arms:
        points: List[CurvePoint] = curves[arm.label]
        if arm is base:
            reduction = "-"
        else:
            interval = pb.relative_wer_reduction(
                [(base_errors, pb.utterance_errors(recogs_path(arm.exp_dir, epochs)))],
                resamples=resamples)
            reduction = interval.text(scale=100, unit="%")
            verdicts.append(_verdict(arm.label, base.label, interval))
        lines.append(f"| {arm.label} | " + " | ".join(f"{p.wer:.2f}" for p in points)
                     + f" | {points[-1].updates} | {reduction} |")
    out = [f"{TEST_SET} WER (%) after each epoch (greedy search, the epoch's averaged model); "
           f"{len(base_errors)} utterances, {resamples} bootstrap replicates, one training seed "
           "per optimiser (the intervals come from the utterances alone).", "", *lines, "",
           "What the intervals support:", "", *verdicts]
    if plot is not None and plot_learning_curves(curves, plot, TEST_SET):
        out += ["", f"![{TEST_SET} WER against updates]({plot.name})"]
    return out
