"""The distillation table of RESULTS.md and its two pictures, from decode outputs only.

A row is a model (an experiment folder, or several folders that differ only by seed); its
cells are read from the wer-summary and latency files ``decode.py`` wrote for one decoding
setting: greedy search with one symbol per frame and modified beam search, in simulated
streaming at the recipe's chunk size (full context for the teacher).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from icefall_kd.reporting import paired_bootstrap
from icefall_kd.reporting.paired_bootstrap import Interval
from icefall_kd.reporting.results import DecodeKey, read_latency

TEST_SETS = ("test-clean", "test-other")
# run.sh --chunk-conv true: the baseline trained with --conv-context chunk, and the method on it.
CHUNK_CONV_BASELINE = "transducer_streaming/exp-chunk-conv"
CHUNK_CONV_METHOD = "kd_stage2_output/exp-chunk-conv"


@dataclass
class Row:
    name: str
    exp_dirs: List[str]  # one per seed
    streaming: bool = True
    note: str = ""
    epoch: Optional[int] = None  # the checkpoint decoded; None: the last one decoded


def default_rows(seed_dirs: Dict[str, List[str]]) -> List[Row]:
    """The table's rows in order; ``seed_dirs`` maps the baseline's and the method's first
    folder to its extra seed folders."""
    base, method = "transducer_streaming/exp", "kd_stage2_output/exp"
    return [
        Row("teacher (full context)", ["transducer_teacher/exp"], streaming=False),
        Row("streaming baseline", [base] + seed_dirs.get(base, [])),
        Row("baseline trained on (no teacher, same updates as stages 1+2)",
            ["transducer_streaming/exp-continued"], note="control"),
        Row("stage 1 only (hidden MSE)", ["kd_stage1_hidden/exp"]),
        Row("stage 2 only, fixed temperature", ["kd_stage2_output/exp-only-fixed"]),
        Row("one stage: MSE + KL together", ["kd_stage1_hidden/exp-joint"]),
        Row("two stages, fixed temperature", ["kd_stage2_output/exp-fixed"]),
        Row("two stages, adaptive power transform (the method)", [method] + seed_dirs.get(method, [])),
        Row("streaming baseline, chunk-aware convolution", [CHUNK_CONV_BASELINE]),
        Row("the method on the chunk-aware baseline", [CHUNK_CONV_METHOD]),
    ]


def find_key(keys: Sequence[DecodeKey], exp_dir: str, method: str,
             chunk: Optional[int], left: Optional[int],
             epoch: Optional[int] = None) -> Optional[DecodeKey]:
    """The decode.py result of ``exp_dir`` for ``method`` (greedy: one symbol per frame) in
    simulated streaming with that chunk and left context, or full context (chunk None), of
    checkpoint ``epoch``; with epoch None, of the last epoch decoded (the model the recipe
    trained; an earlier one decoded beside it is asked for by its epoch)."""
    found = [key for key in keys
             if key.exp_dir == exp_dir and key.method == method and not key.chunkwise
             and key.result.max_sym_per_frame == 1
             and (key.result.chunk_size, key.result.left_context) == (chunk, left)
             and (epoch is None or key.result.epoch == epoch)]
    if not found:
        return None
    last = max(key.result.epoch for key in found)
    candidates = [key for key in found if key.result.epoch == last]
    if len(candidates) > 1:
        # Same epoch, different --avg (or averaged-model) settings: which one the recipe
        # meant is not in the files, and picking one would silently mix models.
        raise ValueError(
            f"{exp_dir}/{method}: {len(candidates)} test-set decodes of epoch {last} differ "
            f"only in checkpoint averaging ({', '.join(sorted(k.suffix for k in candidates))}); "
            "move the ones the recipe did not make out of the folder and run this again")
    return candidates[0]


@dataclass
class Cell:
    values: List[float]

    def __post_init__(self) -> None:  # a model that never emits has no latency: not a number
        self.values = [v for v in self.values if not math.isnan(v)]

    @property
    def mean(self) -> Optional[float]:
        return statistics.fmean(self.values) if self.values else None

    def text(self, digits: int = 2) -> str:
        if not self.values:
            return "-"
        if len(self.values) == 1:
            return f"{self.values[0]:.{digits}f}"
        half_range = (max(self.values) - min(self.values)) / 2
        return f"{self.mean:.{digits}f} ± {half_range:.{digits}f}"


def row_cells(row: Row, wers: Dict[DecodeKey, Dict[str, float]], chunk: int, left: int) -> dict:
    """{column: Cell} over the row's seeds."""
    keys = list(wers)
    cells: Dict[str, Cell] = {}
    for method, tag in (("greedy_search", "greedy"), ("modified_beam_search", "beam")):
        # Beam search is decoded for the first seed only (it costs ten times greedy's time).
        dirs = row.exp_dirs if tag == "greedy" else row.exp_dirs[:1]
        for test_set in TEST_SETS:
            values = []
            for exp_dir in dirs:
                key = find_key(keys, exp_dir, method, chunk if row.streaming else None,
                               left if row.streaming else None, row.epoch)
                if key is not None and test_set in wers[key]:
                    values.append(wers[key][test_set])
            cells[f"{tag} {test_set}"] = Cell(values)
    first, delay = [], []
    for exp_dir in row.exp_dirs:
        key = find_key(keys, exp_dir, "greedy_search", chunk if row.streaming else None,
                       left if row.streaming else None, row.epoch)
        if key is None:
            continue
        lats = [read_latency(key, t) for t in TEST_SETS]
        lats = [lat for lat in lats if lat]
        if lats:
            first.append(statistics.fmean(lat["first_token_latency"]["mean_ms"] for lat in lats))
            delay.append(statistics.fmean(lat["symbol_delay"]["mean_ms"] for lat in lats))
    cells["first token ms"] = Cell(first)
    cells["symbol delay ms"] = Cell(delay)
    return cells


def paired_baseline(baseline: Optional[dict], cells: dict, col: str) -> Optional[float]:
    """The baseline's mean over the seeds the row has: seed i of a student starts from seed i
    of the baseline, so a one-seed row compares with the first seed only, not with a mean
    over seeds it never saw."""
    if not baseline or not baseline[col].values:
        return None
    return Cell(baseline[col].values[: len(cells[col].values)]).mean


def table_cells(wers: Dict[DecodeKey, Dict[str, float]], rows: Sequence[Row], chunk: int,
                left: int) -> List[Tuple[Row, dict]]:
    """Each row with its cells (:func:`row_cells`), rows without any decode result left out:
    read once, for the table, the per-seed lines and the plot."""
    table = [(row, row_cells(row, wers, chunk, left)) for row in rows]
    return [(row, cells) for row, cells in table if cells["greedy test-clean"].values]


def per_seed_differences(table: Sequence[Tuple[Row, dict]]) -> List[str]:
    """One line per student row with several seeds: its greedy WER minus its own seed's
    baseline, seed by seed (negative: better than the baseline)."""
    baseline = next((c for r, c in table if r.name == "streaming baseline"), None)
    lines = []
    for row, cells in table:
        if (not row.streaming or row.name == "streaming baseline" or baseline is None
                or len(cells["greedy test-clean"].values) < 2):
            continue
        parts = []
        for test_set in TEST_SETS:
            col = f"greedy {test_set}"
            diffs = [m - b for m, b in zip(cells[col].values, baseline[col].values)]
            better = sum(d < 0 for d in diffs)
            parts.append(f"{test_set} {', '.join(f'{d:+.2f}' for d in diffs)} "
                         f"(better on {better} of {len(diffs)})")
        lines.append(f"- {row.name}, WER minus its own seed's baseline, seed by seed: "
                     + "; ".join(parts))
    return lines


def _greedy_keys(keys: Sequence[DecodeKey], exp_dirs: Sequence[str], streaming: bool,
                 chunk: int, left: int) -> List[Optional[DecodeKey]]:
    return [find_key(keys, d, "greedy_search", chunk if streaming else None,
                     left if streaming else None) for d in exp_dirs]


def paired_intervals(row_dirs: Sequence[str], baseline_dirs: Sequence[str],
                     keys: Sequence[DecodeKey], chunk: int, left: int) -> Dict[str, Optional[Interval]]:
    """Paired-bootstrap intervals (:mod:`paired_bootstrap`) of a streaming row against the
    baseline, seed i against baseline seed i, greedy search at (chunk, left): the relative
    WER reduction per test set, and the first-token latency and symbol delay differences
    (seconds) over both test sets together. None where an output is missing."""
    pairs = [(b, m) for b, m in zip(_greedy_keys(keys, baseline_dirs, True, chunk, left),
                                    _greedy_keys(keys, row_dirs, True, chunk, left))
             if b is not None and m is not None]
    out: Dict[str, Optional[Interval]] = {}
    for test_set in TEST_SETS:
        paths = [(b.res_dir / f"recogs-{test_set}-{b.suffix}.txt",
                  m.res_dir / f"recogs-{test_set}-{m.suffix}.txt") for b, m in pairs]
        paths = [(b, m) for b, m in paths if b.is_file() and m.is_file()]
        out[test_set] = paired_bootstrap.relative_wer_reduction(
            [(paired_bootstrap.utterance_errors(b), paired_bootstrap.utterance_errors(m))
             for b, m in paths]) if paths else None
    per_seed = []
    for b, m in pairs:
        arms = []
        for key in (b, m):
            merged = {}
            for test_set in TEST_SETS:
                path = key.res_dir / f"timestamps-{test_set}-{key.suffix}.jsonl"
                lat = paired_bootstrap.utterance_latencies(path) if path.is_file() else {}
                merged.update({f"{test_set}/{cut}": v for cut, v in lat.items()})
            arms.append(merged)
        if arms[0] and arms[1]:
            per_seed.append(arms)
    out.update(paired_bootstrap.latency_differences(per_seed))
    return out


def _reduction_text(interval: Optional[Interval]) -> str:
    return interval.text(scale=100, unit="%") if interval else "-"


def _latency_text(interval: Optional[Interval]) -> str:
    return interval.text(scale=1000, digits=0) if interval else "-"


def interval_conclusions(named: Sequence[Tuple[str, Dict[str, Optional[Interval]]]],
                         against: str) -> List[str]:
    """One sentence per kind of conclusion the intervals support, for rows of ``named``."""
    better, worse, open_ = [], [], []
    for name, iv in named:
        wer = [iv.get(t) for t in TEST_SETS]
        if None in wer:
            continue
        if all(i.low > 0 for i in wer):
            better.append(name)
        elif all(i.high < 0 for i in wer):
            worse.append(name)
        else:
            open_.append(name)
    lines = []
    if better:
        lines.append(f"- Fewer errors than {against} on both test sets, interval above zero: "
                     + "; ".join(better) + ".")
    if worse:
        lines.append(f"- More errors than {against} on both test sets, interval below zero: "
                     + "; ".join(worse) + ".")
    if open_:
        lines.append("- Not established on both test sets (an interval includes zero, or the "
                     "two sets disagree): " + "; ".join(open_) + ".")
    for measure in ("first token", "symbol delay"):
        earlier = [n for n, iv in named if iv.get(measure) and iv[measure].high < 0]
        later = [n for n, iv in named if iv.get(measure) and iv[measure].low > 0]
        if earlier:
            lines.append(f"- {measure.capitalize()} earlier than {against}, interval below "
                         "zero: " + "; ".join(earlier) + ".")
        if later:
            lines.append(f"- {measure.capitalize()} later than {against}, interval above "
                         "zero: " + "; ".join(later) + ".")
    return lines


def wer_standard_errors(keys: Sequence[DecodeKey], exp_dir: str, chunk: int, left: int
                        ) -> Dict[str, Tuple[float, int]]:
    """{test set: (bootstrap standard error of the WER in points, utterances)} of one
    model's greedy result: what the test-set size alone gives."""
    key = find_key(keys, exp_dir, "greedy_search", chunk, left)
    out = {}
    for test_set in TEST_SETS:
        path = key.res_dir / f"recogs-{test_set}-{key.suffix}.txt" if key else None
        if path is not None and path.is_file():
            errors = paired_bootstrap.utterance_errors(path)
            out[test_set] = (paired_bootstrap.wer_standard_error(errors), len(errors))
    return out


def distillation_table(table: Sequence[Tuple[Row, dict]],
                       intervals: Optional[Dict[str, Dict[str, Optional[Interval]]]] = None,
                       baseline_name: str = "streaming baseline") -> List[str]:
    """Markdown lines of the table, from :func:`table_cells`; ``intervals`` maps a row name
    to its :func:`paired_intervals` against the row named ``baseline_name``."""
    intervals = intervals or {}
    by_name = {row.name: cells for row, cells in table}
    teacher = next((c for r, c in table if not r.streaming), None)
    baseline = by_name.get(baseline_name)
    lines = [
        "| model | seeds | greedy test-clean | greedy test-other | beam test-clean | beam test-other "
        "| rel. WER reduction vs baseline, 95% CI (greedy test-clean) | same, test-other "
        "| gap to teacher closed (greedy clean / other) | first token ms | symbol delay ms "
        "| first token vs baseline, ms, 95% CI | symbol delay vs baseline, ms, 95% CI |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, cells in table:
        closed = []
        for test_set in TEST_SETS:
            col = f"greedy {test_set}"
            wer, base = cells[col].mean, paired_baseline(baseline, cells, col)
            teach = teacher[col].mean if teacher else None
            if row.streaming and base and wer is not None and row.name != baseline_name:
                closed.append(f"{100 * (base - wer) / (base - teach):+.0f}%"
                              if teach is not None and base > teach else "-")
            else:
                closed.append("-")
        iv = intervals.get(row.name, {})
        seeds = len(cells["greedy test-clean"].values)
        lines.append(
            f"| {row.name} | {seeds} | " + " | ".join(
                cells[f"{tag} {t}"].text() for tag in ("greedy", "beam") for t in TEST_SETS)
            + " | " + " | ".join(_reduction_text(iv.get(t)) for t in TEST_SETS)
            + f" | {' / '.join(closed)} | "
            f"{cells['first token ms'].text(0)} | {cells['symbol delay ms'].text(0)} | "
            f"{_latency_text(iv.get('first token'))} | {_latency_text(iv.get('symbol delay'))} |")
    return lines


def table_intervals(table: Sequence[Tuple[Row, dict]], wers: Dict[DecodeKey, Dict[str, float]],
                    chunk: int, left: int, baseline_name: str = "streaming baseline"
                    ) -> Dict[str, Dict[str, Optional[Interval]]]:
    """:func:`paired_intervals` of every streaming row of ``table`` but the baseline."""
    baseline = next((r for r, _ in table if r.name == baseline_name), None)
    if baseline is None:
        return {}
    return {row.name: paired_intervals(row.exp_dirs, baseline.exp_dirs, list(wers), chunk, left)
            for row, _ in table if row.streaming and row is not baseline}


def decoded_chunks(wers: Dict[DecodeKey, Dict[str, float]], exp_dirs: Sequence[str]
                   ) -> List[Tuple[int, int]]:
    """(chunk, left context) pairs at which any of ``exp_dirs`` was decoded with greedy
    search (one symbol per frame) in simulated streaming, by chunk."""
    return sorted({(k.result.chunk_size, k.result.left_context) for k in wers
                   if k.exp_dir in exp_dirs and k.method == "greedy_search" and not k.chunkwise
                   and k.result.streaming and k.result.max_sym_per_frame == 1})


def chunk_sweep_table(wers: Dict[DecodeKey, Dict[str, float]], series: Dict[str, str],
                      baseline_dir: str, teacher_dir: str) -> List[str]:
    """Markdown lines: for every decoded (chunk, left context) of :func:`decoded_chunks`,
    one line per model of ``series`` (name -> folder): greedy WER, the share of the
    teacher-baseline gap it closes against ``baseline_dir`` at the same chunk, latency."""
    teacher = row_cells(Row("teacher", [teacher_dir], streaming=False), wers, 0, 0)
    lines = ["| chunk ms | left ms | model | greedy test-clean | greedy test-other | gap to "
             "teacher closed (clean / other) | rel. WER reduction vs baseline, 95% CI "
             "(test-clean) | same, test-other | first token ms | symbol delay ms | RTF |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for chunk, left in decoded_chunks(wers, list(series.values())):
        base = row_cells(Row("baseline", [baseline_dir]), wers, chunk, left)
        for name, exp_dir in series.items():
            cells = row_cells(Row(name, [exp_dir]), wers, chunk, left)
            if not cells["greedy test-clean"].values:
                continue
            closed = []
            for test_set in TEST_SETS:
                col = f"greedy {test_set}"
                wer, b, t = cells[col].mean, base[col].mean, teacher[col].mean
                closed.append(f"{100 * (b - wer) / (b - t):+.0f}%" if None not in (wer, b, t)
                              and b > t and exp_dir != baseline_dir else "-")
            iv = (paired_intervals([exp_dir], [baseline_dir], list(wers), chunk, left)
                  if exp_dir != baseline_dir else {})
            lines.append(f"| {chunk * 40} | {left * 40} | {name} | "
                         f"{cells['greedy test-clean'].text()} | {cells['greedy test-other'].text()} | "
                         f"{' / '.join(closed)} | "
                         + " | ".join(_reduction_text(iv.get(t)) for t in TEST_SETS)
                         + f" | {cells['first token ms'].text(0)} | "
                         f"{cells['symbol delay ms'].text(0)} | "
                         f"{chunkwise_rtf(wers, exp_dir, chunk, left)} |")
    return lines


def chunkwise_rtf(wers: Dict[DecodeKey, Dict[str, float]], exp_dir: str, chunk: int,
                  left: int) -> str:
    """Real-time factor of chunk-wise greedy recognition from audio (streaming_decode.py,
    one thread) at that chunk, mean over the test sets; "-" where it was not run."""
    for key in wers:
        if (key.exp_dir == exp_dir and key.chunkwise and key.method == "greedy_search"
                and (key.result.chunk_size, key.result.left_context) == (chunk, left)):
            rtfs = [lat["real_time_factor"] for t in TEST_SETS
                    if (lat := read_latency(key, t)) and "real_time_factor" in lat]
            if rtfs:
                return f"{sum(rtfs) / len(rtfs):.3f}"
    return "-"


def plot_wer_vs_latency(table: Sequence[Tuple[Row, dict]], chunk: int, path: Path) -> bool:
    """WER (greedy, test-clean) against mean first-token latency, one point per model of
    :func:`table_cells`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 (matplotlib.ticker below)

    points = []
    for row, cells in table:
        wer, lat = cells["greedy test-clean"].mean, cells["first token ms"].mean
        if wer is not None and lat is not None:
            points.append((row.name, lat, wer))
    if not points:
        return False
    # A legend, not labels by the points: the streaming models sit close together and
    # their labels would overlap; a log axis keeps the full-context teacher on the plot.
    fig, ax = plt.subplots(figsize=(7, 5.5))
    markers = "osD^vP*Xh<>"
    for i, (name, lat, wer) in enumerate(points):
        ax.scatter(lat, wer, marker=markers[i % len(markers)], s=40, label=name)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda x, _: f"{x:g}" if str(int(x))[0] in "1245" else ""))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax.set_xlabel("mean first-token latency (ms, log scale; test-clean and test-other)")
    ax.set_ylabel("WER % (greedy, test-clean)")
    ax.set_title(f"WER against first-token latency (streaming: chunk {chunk * 40} ms)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_wer_vs_chunk(wers, series: Dict[str, str], teacher_dir: str, path: Path) -> bool:
    """WER (greedy) against decoding chunk size for streaming models, teacher as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    drawn = False
    for ax, test_set in zip(axes, TEST_SETS):
        for name, exp_dir in series.items():
            points = []
            for key, by_set in wers.items():
                if (key.exp_dir == exp_dir and key.method == "greedy_search" and not key.chunkwise
                        and key.result.streaming and key.result.max_sym_per_frame == 1
                        and test_set in by_set):
                    points.append((key.result.chunk_size * 40, by_set[test_set]))
            if points:
                points.sort()
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
                drawn = True
        teacher = find_key(list(wers), teacher_dir, "greedy_search", None, None)
        if teacher is not None and test_set in wers[teacher]:
            ax.axhline(wers[teacher][test_set], linestyle="--", color="gray",
                       label="teacher (full context)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("decoding chunk (ms)")
        ax.set_ylabel(f"WER % (greedy, {test_set})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if drawn:
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn
