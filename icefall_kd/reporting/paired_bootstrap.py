"""Confidence intervals for "model against baseline" from per-utterance decoding outputs.

Method (stated in RESULTS.md beside every interval): a paired bootstrap. The test set is the
random sample we want to generalise beyond, and training seeds are a second one, so each
replicate draws utterances with replacement (the same draw for the model and its baseline:
paired) and, when there are several seeds, seeds with replacement (a seed brings its model
and the baseline that seed started from). The statistic of a replicate is a ratio of sums
over the drawn seeds and utterances:

- relative WER reduction: 1 - (model errors) / (baseline errors), which is the reduction
  of the seed-mean WER (every seed has the same reference words);
- latency difference: model mean minus baseline mean, each a pooled mean (sum over the drawn
  utterances of the values, over their count: first-token latency has one value per
  utterance that emits a token, symbol delay one per correctly recognised word).

The interval is the percentile interval of the replicates; the estimate is the statistic on
the data as they are. With one seed only the utterances are resampled, and the interval says
nothing about seed-to-seed spread: the text says so.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import kaldialign
import numpy as np

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    seeds: int
    utterances: int

    @property
    def excludes_zero(self) -> bool:  # False for an undefined (NaN) interval
        return self.low > 0 or self.high < 0

    def text(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        """``+5.1% [+2.0, +8.3]`` style; ``-`` when undefined."""
        if not np.isfinite(self.estimate):
            return "-"
        return (f"{scale * self.estimate:+.{digits}f}{unit} "
                f"[{scale * self.low:+.{digits}f}, {scale * self.high:+.{digits}f}]")


# ------------------------------------------------------------------------ reading outputs
def utterance_errors(recogs_path: Path) -> Dict[str, Tuple[int, int]]:
    """{cut id: (word errors, reference words)} from an icefall ``recogs-`` file."""
    refs: Dict[str, List[str]] = {}
    hyps: Dict[str, List[str]] = {}
    for number, line in enumerate(Path(recogs_path).read_text().splitlines(), 1):
        cut_id, sep, rest = line.partition(":\t")
        if not sep or rest[:4] not in ("ref=", "hyp="):
            raise ValueError(f"{recogs_path}:{number}: not a recogs line "
                             "('<cut id>:\\tref=[...]' or '...hyp=[...]')")
        (refs if rest.startswith("ref=") else hyps)[cut_id] = ast.literal_eval(rest[4:])
    if set(refs) != set(hyps):
        raise ValueError(f"{recogs_path}: cuts with a ref= line but no hyp= line, or the reverse")
    return {cut: (kaldialign.edit_distance(refs[cut], hyps[cut])["total"], len(refs[cut]))
            for cut in refs}


def utterance_latencies(timestamps_path: Path) -> Dict[str, Tuple[Optional[float], List[float]]]:
    """{cut id: (first-token seconds or None, symbol delays in seconds)} from a
    ``timestamps-`` file; {} if it predates these fields."""
    out = {}
    for line in Path(timestamps_path).read_text().splitlines():
        record = json.loads(line)
        if "symbol_delays" not in record:
            return {}
        out[record["cut_id"]] = (record.get("first_token_seconds"), record["symbol_delays"])
    return out


# ------------------------------------------------------------------------ the bootstrap
def _arrays(pairs: Sequence[Tuple[dict, dict]]) -> Tuple[List[str], int]:
    """The cut ids every seed's model and baseline have, in a fixed order."""
    if not pairs:
        raise ValueError("no (baseline, model) pairs to compare")
    common = set(pairs[0][0])
    for baseline, model in pairs:
        common &= set(baseline) & set(model)
    if not common:
        raise ValueError("the baseline and the model share no decoded utterance")
    return sorted(common), len(pairs)


def _replicate_weights(utterances: int, seeds: int, resamples: int,
                       rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(R, U) utterance draw counts and (R, S) seed draw counts; seeds fixed when S == 1."""
    draws = rng.integers(0, utterances, size=(resamples, utterances))
    utt_w = np.zeros((resamples, utterances), np.float64)
    np.add.at(utt_w, (np.arange(resamples)[:, None], draws), 1.0)
    if seeds == 1:
        seed_w = np.ones((resamples, 1))
    else:
        seed_draws = rng.integers(0, seeds, size=(resamples, seeds))
        seed_w = np.zeros((resamples, seeds))
        np.add.at(seed_w, (np.arange(resamples)[:, None], seed_draws), 1.0)
    return utt_w, seed_w


def _pooled(values: np.ndarray, utt_w: np.ndarray, seed_w: np.ndarray) -> np.ndarray:
    """(S, U) -> (R,): sum over drawn seeds and utterances, each replicate."""
    per_seed = values @ utt_w.T  # (S, R)
    return np.einsum("rs,sr->r", seed_w, per_seed)


def _interval(estimate: float, replicates: np.ndarray, confidence: float, seeds: int,
              utterances: int) -> Interval:
    replicates = replicates[np.isfinite(replicates)]
    if not np.isfinite(estimate) or replicates.size == 0:
        # Nothing to compare (no baseline errors; no utterance with a latency value).
        return Interval(float("nan"), float("nan"), float("nan"), seeds, utterances)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), seeds, utterances)


def relative_wer_reduction(pairs: Sequence[Tuple[Dict[str, Tuple[int, int]],
                                                 Dict[str, Tuple[int, int]]]],
                           resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                           seed: int = 0) -> Interval:
    """Relative WER reduction of the model against the baseline (0.05: 5% fewer errors).

    ``pairs``: one (baseline, model) per training seed, each {cut id: (errors, ref words)}
    as :func:`utterance_errors` returns.
    """
    cuts, seeds = _arrays(pairs)
    base = np.array([[b[c][0] for c in cuts] for b, _ in pairs], np.float64)
    model = np.array([[m[c][0] for c in cuts] for _, m in pairs], np.float64)
    estimate = 1.0 - model.sum() / base.sum() if base.sum() > 0 else float("nan")
    utt_w, seed_w = _replicate_weights(len(cuts), seeds, resamples, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = 1.0 - _pooled(model, utt_w, seed_w) / _pooled(base, utt_w, seed_w)
    return _interval(estimate, replicates, confidence, seeds, len(cuts))


def _sums_and_counts(values_by_cut: Dict[str, List[float]], cuts: Sequence[str]):
    sums = np.array([float(np.sum(values_by_cut[c])) for c in cuts])
    counts = np.array([float(len(values_by_cut[c])) for c in cuts])
    return sums, counts


def mean_difference(pairs: Sequence[Tuple[Dict[str, List[float]], Dict[str, List[float]]]],
                    resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                    seed: int = 0) -> Interval:
    """Model minus baseline of a pooled mean (e.g. latency seconds; negative: earlier).

    ``pairs``: one (baseline, model) per seed, each {cut id: values of that utterance}
    (one first-token latency, or none when nothing was emitted; or every symbol delay).
    """
    cuts, seeds = _arrays(pairs)
    arms = []
    for arm in (0, 1):
        sums, counts = zip(*(_sums_and_counts(pair[arm], cuts) for pair in pairs))
        arms.append((np.stack(sums), np.stack(counts)))
    (bs, bc), (ms, mc) = arms
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = ms.sum() / mc.sum() - bs.sum() / bc.sum()
    utt_w, seed_w = _replicate_weights(len(cuts), seeds, resamples, np.random.default_rng(seed))
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = (_pooled(ms, utt_w, seed_w) / _pooled(mc, utt_w, seed_w)
                      - _pooled(bs, utt_w, seed_w) / _pooled(bc, utt_w, seed_w))
    return _interval(estimate, replicates, confidence, seeds, len(cuts))


def latency_differences(pairs: Sequence[Tuple[dict, dict]]) -> Dict[str, Optional[Interval]]:
    """{"first token": ..., "symbol delay": ...} intervals (:func:`mean_difference`) from one
    (baseline, model) pair per seed of :func:`utterance_latencies` outputs; None without pairs."""
    out: Dict[str, Optional[Interval]] = {}
    for name, pick in (("first token", lambda v: [] if v[0] is None else [v[0]]),
                       ("symbol delay", lambda v: v[1])):
        out[name] = mean_difference(
            [({c: pick(v) for c, v in b.items()}, {c: pick(v) for c, v in m.items()})
             for b, m in pairs]) if pairs else None
    return out


def wer_standard_error(errors: Dict[str, Tuple[int, int]], resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0) -> float:
    """Bootstrap standard error (WER points, %) of one model's WER on one test set, from
    the sampling of utterances alone."""
    cuts = sorted(errors)
    err = np.array([[errors[c][0] for c in cuts]], np.float64)
    ref = np.array([[errors[c][1] for c in cuts]], np.float64)
    utt_w, seed_w = _replicate_weights(len(cuts), 1, resamples, np.random.default_rng(seed))
    wers = 100.0 * _pooled(err, utt_w, seed_w) / _pooled(ref, utt_w, seed_w)
    return float(np.std(wers, ddof=1))
