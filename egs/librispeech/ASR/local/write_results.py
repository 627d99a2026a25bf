#!/usr/bin/env python3
r"""Write RESULTS.md from the outputs of run.sh (wer-summary, recogs, latency files, the
aligner error) and the commands run.sh logged. Nothing in RESULTS.md is typed by hand.

Usage (from egs/librispeech/ASR):
  ./local/write_results.py --commands-dir exp-commands --lang-dir data/lang_bpe_100 \
      --output RESULTS.md
"""

import argparse
import json
import re
from pathlib import Path

import sentencepiece as spm

from icefall_kd.training.checkpoint import (OPTIMIZER_LABELS, epoch_checkpoints, load_checkpoint,
                                         saved_optimizer)
from icefall_kd.reporting.distill_table import (
    CHUNK_CONV_BASELINE,
    CHUNK_CONV_METHOD,
    chunk_sweep_table,
    chunkwise_rtf,
    default_rows,
    distillation_table,
    interval_conclusions,
    per_seed_differences,
    plot_wer_vs_chunk,
    plot_wer_vs_latency,
    row_cells,
    Row,
    table_cells,
    table_intervals,
    wer_standard_errors,
)
from icefall_kd.reporting.paired_bootstrap import DEFAULT_RESAMPLES
from icefall_kd.reporting.result_key import ResultKey
from icefall_kd.reporting.study import study_section, with_study_section
from icefall_kd.reporting.training_log import epoch_end_seconds, equal_time_epoch, log_span_seconds
from icefall_kd.reporting.results import (
    collect_wers,
    identical_share,
    parse_result_name,
    read_hyps,
    read_latency,
    token_rate_statistics,
    without_dev_only,
)
from icefall_kd.utils import HelpFormatter

TEST_SETS = ("dev-clean", "test-clean", "test-other")
MODELS = (("transducer_teacher/exp", "teacher"), ("transducer_streaming/exp", "streaming baseline"))
METHOD = "kd_stage2_output/exp"

# run.sh --chunk-conv true: the baseline and the method again, --conv-context chunk.
CHUNK_CONV = (CHUNK_CONV_BASELINE, CHUNK_CONV_METHOD)
# run.sh --zipformer true (issue 19): the same recipe with the Zipformer encoder.
ZIPFORMER_TEACHER = "transducer_teacher/exp-zipformer"
ZIPFORMER_BASELINE = "transducer_streaming/exp-zipformer"
ZIPFORMER_CONTROL = "transducer_streaming/exp-zipformer-continued"
ZIPFORMER_METHOD = "kd_stage2_output/exp-zipformer"
NAMES = {**dict(MODELS), METHOD: "distilled student (two stages, adaptive)",
         CHUNK_CONV_BASELINE: "streaming baseline, chunk-aware convolution",
         CHUNK_CONV_METHOD: "distilled student on the chunk-aware baseline",
         ZIPFORMER_BASELINE: "Zipformer streaming baseline",
         ZIPFORMER_METHOD: "Zipformer distilled student (two stages, adaptive)"}


def seed_dirs(exp_dir: str):
    """exp -> [exp-seed2, exp-seed3, ...] that exist."""
    pattern = re.compile(re.escape(Path(exp_dir).name) + r"-seed(\d+)")
    numbered = [(int(m.group(1)), p) for p in Path(exp_dir).parent.iterdir()
                if (m := pattern.fullmatch(p.name))]  # not exp-seed2-old and the like
    found = [p for _, p in sorted(numbered)]
    return [str(p) for p in found]


STAGE_NAMES = {0: "data (prepare.sh)", 1: "teacher and baseline training", 3: "decoding",
               4: "teacher alignment", 5: "chunk-wise recognition", 6: "distillation stage 1",
               7: "distillation stage 2", 8: "ablations and seeds", 9: "decoding the students",
               10: "export to sherpa-onnx and decoding with it",
               11: "RESULTS.md"}


def sherpa_reference(all_wers, exp_dir: str, exported: ResultKey, test_set: str):
    """The PyTorch greedy WER (one symbol per frame) beside a sherpa-onnx result: chunk-wise
    (streaming_decode.py) at the export's chunk and left context, or full context."""
    reference = None
    for key, by_set in all_wers.items():
        if (key.exp_dir == exp_dir and key.method == "greedy_search"
                and key.result.max_sym_per_frame == 1 and key.chunkwise == exported.streaming
                and (key.result.chunk_size, key.result.left_context)
                == (exported.chunk_size, exported.left_context)):
            reference = by_set.get(test_set)
    return reference


def sherpa_section(all_wers) -> list:
    """sherpa-onnx decoding of the exported models (transducer_*/sherpa_decode.py)."""
    # The models run.sh exports (stage 10), not side experiments that were also exported.
    paths = [p for exp_dir in ("transducer_teacher/exp", METHOD, CHUNK_CONV_METHOD,
                               ZIPFORMER_TEACHER, ZIPFORMER_METHOD)
             for p in sorted(Path(exp_dir).glob("sherpa-onnx/greedy_search/sherpa-summary-*.json"))]
    if not paths:
        return []
    lines = ["", "## sherpa-onnx", "",
             "The exported ONNX files decoded by the pip `sherpa_onnx` runtime (greedy search, "
             "one thread, " + BESIDE_ANOTHER_JOB + "): `OnlineRecognizer` for the streaming "
             "student, `OfflineRecognizer` for the teacher. Identical: share of utterances whose sherpa-onnx tokens equal PyTorch "
             "greedy search on the same audio, fed as sherpa-onnx feeds it (full windows, tail "
             "padding); for the student also against `streaming_decode.py`, which runs the last "
             "partial chunk instead of padding. PyTorch WER: the same model's chunk-wise "
             "(`streaming_decode.py`) or full-context greedy WER above.", "",
             "| model | precision | test set | WER sherpa-onnx | WER PyTorch | identical to PyTorch "
             "| identical to streaming_decode.py | RTF |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for path in paths:
        summary = json.loads(path.read_text())
        exp_dir = str(path.parents[2])
        test_set = summary["test_set"]
        _, exported = parse_result_name(path, "sherpa-summary")
        reference = sherpa_reference(all_wers, exp_dir, exported, test_set)
        share = summary.get("identical_to_pytorch")
        share_sd = summary.get("identical_to_streaming_decode")
        lines.append(
            f"| {exp_dir} | {summary['precision']} | {test_set} | {summary['wer']:.2f} | "
            f"{fmt(reference)} | {fmt(None if share is None else 100 * share, 1)}% | "
            f"{'-' if share_sd is None else f'{100 * share_sd:.1f}%'} | "
            f"{summary['real_time_factor']:.4f} |")
    return lines


def trained_by_run_sh(args) -> set:
    """Experiment folders of the training commands run.sh logged (not side experiments)."""
    folders = set()
    if args.commands_dir.is_dir():
        for path in args.commands_dir.glob("*.txt"):
            for line in path.read_text().splitlines():
                words = line.split()
                if any(w.endswith("train.py") for w in words) and "--exp-dir" in words:
                    folders.add(words[words.index("--exp-dir") + 1])
    return folders


def run_time_section(args) -> list:
    stages = sorted(args.commands_dir.glob("*.seconds")) if args.commands_dir.is_dir() else []
    trained = {path.parent.as_posix() for path in Path(".").glob("*/exp*/train.log")}
    logs = [Path(d) / "train.log" for d in sorted(trained & trained_by_run_sh(args))]
    if not stages and not logs:
        return []
    lines = ["", "## Run time", "", "Wall time of each `run.sh` stage in its last run (from "
             "`exp-commands/NN.seconds`) and of each training (its `train.log`, pauses of over 5 "
             "minutes between resumed runs left out; only what run.sh trained); trainings ran two "
             "to four at a time, one CPU thread each, beside other work.", "",
             "| what | minutes |", "|---|---:|"]
    total = 0.0
    for path in stages:
        seconds = float(path.read_text())
        total += seconds
        lines.append(f"| stage {int(path.stem)}: {STAGE_NAMES.get(int(path.stem), '')} | {seconds / 60:.1f} |")
    if stages:
        lines.append(f"| all stages above | {total / 60:.1f} |")
    for path in logs:
        span = log_span_seconds(path)
        if span is not None:
            lines.append(f"| training `{path.parent}` | {span / 60:.1f} |")
    return lines


def command_lines(args) -> list:
    """Logged commands: exp-commands/NN.txt in stage order (each stage rewrites its file)."""
    if args.commands_dir.is_dir():
        lines = []
        for path in sorted(args.commands_dir.glob("*.txt")):
            lines += [f"# stage {int(path.stem)}"] + path.read_text().splitlines()
        return lines
    return []


def describe(key) -> str:
    """The decoding column: method, symbols per frame (greedy), beam."""
    parts = [key.method.replace("_search", "").replace("modified_beam", "modified beam")]
    if key.result.max_sym_per_frame != 1:
        parts.append(f"max {key.result.max_sym_per_frame} sym/frame")
    elif key.method == "greedy_search":
        parts.append("max 1 sym/frame")
    if key.result.beam_search:
        parts.append(f"beam {key.result.beam_size}")
    return ", ".join(parts)


def mode(key) -> str:
    if not key.result.streaming:
        return "full context"
    how = "chunk-wise from audio" if key.chunkwise else "simulated streaming"
    return f"{how}, chunk {key.result.chunk_size * 40} ms, left {key.result.left_context * 40} ms"


def row_order(key) -> tuple:
    """Within a model: full context first, then simulated streaming, then chunk-wise; by
    method, by chunk, and by file name."""
    return (key.result.streaming, key.chunkwise, key.method, key.result.chunk_size or 0,
            key.suffix)


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--commands-dir", type=Path, default=Path("exp-commands"),
                        help="Where run.sh logged each stage's commands")
    parser.add_argument("--decode-chunk", type=int, default=8,
                        help="The streaming decoding chunk of the distillation table (frames)")
    parser.add_argument("--decode-left-context", type=int, default=32)
    parser.add_argument("--kd-epochs", type=int, default=1,
                        help="Epochs of each distillation stage (for the table's caption)")
    parser.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"))
    parser.add_argument("--output", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--study-only", action="store_true",
                        help="Write only the study's section (study.sh's outputs under study/) "
                        "into --output, leaving the rest as run.sh wrote it: what study.sh "
                        "does where run.sh's outputs are not there")
    return parser.parse_args()


def wer_section(wers, order) -> list:
    """The WER of every decoding of the teacher and the baseline."""
    lines = ["## WER", "",
             "| model | decoding | mode | " + " | ".join(TEST_SETS) + " |",
             "|---|---|---|" + "---:|" * len(TEST_SETS)]
    for key in order:
        row = [fmt(wers[key].get(t)) for t in TEST_SETS]
        lines.append(f"| {NAMES.get(key.exp_dir, key.exp_dir)} | {describe(key)} | {mode(key)} | "
                     + " | ".join(row) + " |")
    return lines


def find_default(order, exp_dir: str, method: str, args, max_sym: bool = False):
    """The decode.py result at the recipe's decoding chunk (streaming) or full context
    (teacher); greedy with one symbol per frame, or with more (max_sym)."""
    for key in order:
        if (key.exp_dir == exp_dir and key.method == method and not key.chunkwise
                and (key.result.max_sym_per_frame != 1) == max_sym
                and (not key.result.streaming
                     or (key.result.chunk_size, key.result.left_context)
                     == (args.decode_chunk, args.decode_left_context))):
            return key
    return None


def streaming_gap_lines(wers, order, args) -> list:
    teacher_key = find_default(order, MODELS[0][0], "greedy_search", args)
    baseline_key = find_default(order, MODELS[1][0], "greedy_search", args)
    if not (teacher_key and baseline_key):
        return []
    lines = ["", "**The streaming gap** (greedy search, 1 symbol per frame): "
             "(baseline - teacher) / teacher:", ""]
    for t in TEST_SETS:
        a, b = wers[teacher_key].get(t), wers[baseline_key].get(t)
        if a and b:
            lines.append(f"- {t}: {a:.2f} -> {b:.2f} ({100 * (b - a) / a:+.1f}% relative)")
    return lines


def symbols_per_frame_lines(wers, order, args) -> list:
    lines = ["", "**One symbol per frame** (what sherpa-onnx's streaming greedy search allows) "
             "against three, test-clean WER:", ""]
    for exp_dir, name in MODELS:
        one = find_default(order, exp_dir, "greedy_search", args)
        three = find_default(order, exp_dir, "greedy_search", args, max_sym=True)
        if one and three:
            lines.append(f"- {name}: {fmt(wers[one].get('test-clean'))} (1) vs "
                         f"{fmt(wers[three].get('test-clean'))} (3)")
    return lines


def token_density_lines(args) -> list:
    sups = Path("data/manifests/librispeech_supervisions_test-clean.jsonl.gz")
    if not (sups.is_file() and (args.lang_dir / "bpe.model").is_file()):
        return []
    sp = spm.SentencePieceProcessor(model_file=str(args.lang_dir / "bpe.model"))
    rate = token_rate_statistics(sups, sp)
    return ["", f"Token density on test-clean ({args.lang_dir.name}, exact word times): "
            f"{rate['mean_tokens_per_frame']:.3f} tokens per 40 ms frame of speech on average "
            f"(99th percentile over utterances {rate['p99_tokens_per_frame']:.3f}); "
            f"{100 * rate['share_of_words_denser_than_one_token_per_frame']:.2f}% of words "
            "have more tokens than frames."]


def parity_section(all_wers, order_all) -> list:
    """Chunk-wise from audio vs simulated streaming, same model and settings."""
    parity = []
    for key in order_all:
        if not key.chunkwise:
            continue
        twin = next((k for k in order_all if not k.chunkwise and k.exp_dir == key.exp_dir
                     and k.method == key.method and k.result == key.result), None)
        if twin is None:
            continue
        for t in TEST_SETS:
            share = identical_share(read_hyps(key, t), read_hyps(twin, t))
            if share is not None:
                parity.append(f"| {NAMES[key.exp_dir]} | {describe(key)} | {mode(twin).split(', ', 1)[1]} | {t} | "
                              f"{100 * share:.1f}% | {fmt(all_wers[twin].get(t))} | {fmt(all_wers[key].get(t))} |")
    if not parity:
        return []
    return ["", "## Chunk-wise recognition vs simulated streaming", "",
            "Same model, same chunk and left context: `streaming_decode.py` (audio in 0.1 s "
            "pieces, online fbank, cached states) against `decode.py` (whole utterances, "
            "masked attention).", "",
            "| model | decoding | chunk | test set | identical hypotheses | WER simulated | WER chunk-wise |",
            "|---|---|---|---|---:|---:|---:|"] + parity


def latency_section(order_all) -> list:
    latency_rows = []
    for key in order_all:
        for t in ("test-clean", "test-other"):
            lat = read_latency(key, t)
            if not lat:
                continue
            first, onset, delay = (lat["first_token_latency"], lat["first_token_after_first_word_onset"],
                                   lat["symbol_delay"])
            rtf = fmt(lat.get("real_time_factor"), 3) if "real_time_factor" in lat else "-"
            latency_rows.append(
                f"| {NAMES.get(key.exp_dir)} | {describe(key)} | {mode(key)} | {t} | "
                f"{first['mean_ms']:.0f} / {first['median_ms']:.0f} / {first['p90_ms']:.0f} | "
                f"{onset['mean_ms']:.0f} | {delay['mean_ms']:.0f} / {delay['median_ms']:.0f} / "
                f"{delay['p90_ms']:.0f} | {lat['symbol_delay_std_ms']:.0f} | {rtf} |")
    if not latency_rows:
        return []
    return ["", "## Latency", "",
            "First-token latency: from the start of the utterance until the first token is "
            "available (the audio of its chunk, look-ahead included, has arrived; for a "
            "full-context model, the whole utterance). Symbol delay: start of each correctly "
            "recognised word (frame of its first token x 40 ms) minus its exact start from the "
            "synthesiser. Milliseconds, mean / median / 90th percentile. RTF: processing time "
            "over audio duration, chunk-wise decoding on one CPU thread (" + BESIDE_ANOTHER_JOB + ").", "",
            "| model | decoding | mode | test set | first token | first token - first word onset (mean) | symbol delay | delay std | RTF |",
            "|---|---|---|---|---:|---:|---:|---:|---:|"] + latency_rows


def aligner_section() -> list:
    aligner = sorted(Path(MODELS[0][0]).glob("aligner-error-*.json"))
    if not aligner:
        return []
    lines = ["", "## Teacher forced alignment (reference times for LibriSpeech)", "",
             "Word starts from a Viterbi alignment of the teacher (`transducer_teacher/align.py`) "
             "against the exact synthesiser times:", "",
             "| test set | words | mean signed error ms | mean abs error ms | median abs ms | p90 abs ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for path in aligner:
        e = json.loads(path.read_text())
        part = path.stem.replace("aligner-error-", "")
        a = e["absolute"]
        lines.append(f"| {part} | {e['words']} | {e['mean_signed_ms']:.0f} | {a['mean_ms']:.0f} | "
                     f"{a['median_ms']:.0f} | {a['p90_ms']:.0f} |")
    return lines


# What a reader may conclude from the table, said where the table is (issue 17 builds the
# study that removes these limits).
# run.sh decodes two jobs at a time (local/lanes.sh), so a real-time factor is measured
# beside another one-thread job.
BESIDE_ANOTHER_JOB = ("run.sh ran decodes two at a time, one thread each, so an RTF includes "
                      "sharing the CPU's caches and memory bandwidth with the other job; "
                      "benchmarks/bench_streaming_rtf.py --beside-another-job true measures "
                      "what that costs")


LIMITS_OF_THE_COMPARISON = (
    "**What this table can and cannot show.** The distillation settings (loss weights, "
    "temperature, entropy floor, epochs per stage) are run.sh's defaults, chosen earlier with "
    "test-clean in view, not selected on dev-clean. The ± is half the range over seeds. The "
    "intervals are a paired bootstrap: each replicate draws test utterances with replacement "
    "(the same ones for a model and its baseline) and, with several seeds, seeds with "
    "replacement (a student with the baseline seed it started from); a row with one seed has "
    "an interval from the test utterances alone, which says nothing about seed-to-seed spread.")
BOOTSTRAP_NOTE = (f"{DEFAULT_RESAMPLES} replicates, 95% percentile intervals "
                  "(`icefall_kd/reporting/paired_bootstrap.py`).")


def distillation_section(wers, args) -> list:
    rows = default_rows({d: seed_dirs(d) for d in ("transducer_streaming/exp", METHOD)})
    cells = table_cells(wers, rows, args.decode_chunk, args.decode_left_context)
    intervals = table_intervals(cells, wers, args.decode_chunk, args.decode_left_context)
    table = distillation_table(cells, intervals)
    if len(table) <= 3:  # header + teacher + baseline only: no student decoded yet
        return []
    chunk_ms, left_ms = args.decode_chunk * 40, args.decode_left_context * 40
    lines = ["", "## Distillation", "",
             f"Students start from the streaming baseline; each distillation stage trains "
             f"{args.kd_epochs} epoch(s), single-stage rows and the control twice as many, so "
             "every student has had the same number of updates after the baseline. Streaming "
             f"models are decoded in simulated streaming with {chunk_ms} ms chunks and {left_ms} ms "
             "of left context (chunk-wise parity above). WER in %; several seeds: mean ± half the "
             "range (greedy; beam search is decoded for the first seed only). Student seed i starts "
             "from baseline seed i, so every student is compared with the baseline over the "
             "same seeds (a one-seed row with the first seed's baseline). Relative reduction: "
             "(baseline - model) / baseline. Gap closed: (baseline - "
             "model) / (baseline - teacher). Latency: greedy search, mean over test-clean and "
             "test-other (definitions in the Latency section).", "",
             LIMITS_OF_THE_COMPARISON + " " + BOOTSTRAP_NOTE, ""]
    standard_errors = wer_standard_errors(list(wers), "transducer_streaming/exp",
                                          args.decode_chunk, args.decode_left_context)
    if standard_errors:
        lines += ["The test-set size alone gives the baseline's greedy WER a bootstrap standard "
                  "error of " + " and ".join(f"{se:.2f} points on {t} ({n} utterances)"
                                             for t, (se, n) in standard_errors.items()) + ".", ""]
    lines += table + ["", "What the intervals support:", ""] + interval_conclusions(
        [(name, iv) for name, iv in intervals.items()], "the streaming baseline")
    paired = per_seed_differences(cells)
    if paired:
        lines += [""] + paired
    if plot_wer_vs_latency(cells, args.decode_chunk, Path("wer-vs-latency.png")):
        lines += ["", "![WER against first-token latency](wer-vs-latency.png)"]
    if plot_wer_vs_chunk(wers, {"streaming baseline": "transducer_streaming/exp",
                                "distilled student": METHOD,
                                "baseline, chunk-aware conv": CHUNK_CONV_BASELINE,
                                "distilled, chunk-aware conv": CHUNK_CONV_METHOD},
                         "transducer_teacher/exp", Path("wer-vs-chunk.png")):
        lines += ["", "![WER against decoding chunk size](wer-vs-chunk.png)"]
    return lines


def chunk_conv_section(wers) -> list:
    """The causal and the chunk-aware convolution side by side at every decoded chunk
    (run.sh --chunk-conv true); nothing when that option was not run."""
    if not any(k.exp_dir in CHUNK_CONV for k in wers):
        return []
    series = {NAMES[d]: d for d in ("transducer_streaming/exp", METHOD) + CHUNK_CONV}
    return ["", "## Chunk-aware convolution", "",
            "The streaming baseline and the method with the causal convolution (the rows above) "
            "and with `--conv-context chunk` (each frame's centred kernel reads the rest of its "
            "chunk, zeros past the chunk's end), greedy search in simulated streaming. Gap "
            "closed: (causal baseline - model) / (causal baseline - teacher) at the same chunk. "
            "Relative WER reduction against the causal baseline at the same chunk, with a paired "
            "bootstrap interval over test utterances (one seed each: the interval says nothing "
            "about seed-to-seed spread); " + BOOTSTRAP_NOTE + " RTF: chunk-wise greedy "
            "recognition from audio at that chunk (the two baselines; the convolution's cost is "
            "per frame, so they stand for the methods too), one thread, mean over the test "
            "sets (" + BESIDE_ANOTHER_JOB + ").", ""
            ] + chunk_sweep_table(wers, series, "transducer_streaming/exp", MODELS[0][0])


def training_facts(exp_dir: str) -> dict:
    """Parameters (M, as the training log states them), epochs trained (its last epoch-N.pt),
    the precision it trained in (as the log states it), the optimiser (its last epoch-N.pt;
    checkpoints older than the choice were AdamW's) and training minutes (its train.log,
    pauses between resumed runs left out)."""
    log = Path(exp_dir) / "train.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    params = re.findall(r"([\d.]+) M parameters", text)
    epochs = [int(m.group(1)) for f in Path(exp_dir).glob("epoch-*.pt")
              if (m := re.fullmatch(r"epoch-(\d+)\.pt", f.name))]
    span = log_span_seconds(log) if log.is_file() else None
    precisions = re.findall(r"training on \S+, precision (\w+)", text)
    optimizer = "-"
    if epochs:
        state = load_checkpoint(epoch_checkpoints(Path(exp_dir))[0])  # the newest epoch
        optimizer = OPTIMIZER_LABELS.get(saved_optimizer(state), saved_optimizer(state))
    return {"params": f"{params[-1]} M" if params else "-", "optimizer": optimizer,
            "precision": precisions[-1] if precisions else "-",
            "epochs": str(max(epochs)) if epochs else "-",
            "minutes": f"{span / 60:.1f}" if span else "-"}


def equal_time_lines(wers, encoders, chunk: int, left: int) -> list:
    """The Zipformer checkpoint whose training time came closest to the Conformer's whole
    training (the epoch run.sh's stage 9 also decodes, greedy only), beside the Conformer."""
    conformers = {streaming: exp_dir for name, exp_dir, streaming in encoders
                  if name.startswith("Conformer")}
    lines, rows = [], []
    for name, exp_dir, streaming in encoders:
        if not name.startswith("Zipformer"):
            continue
        reference = Path(conformers[streaming]) / "train.log"
        epoch = equal_time_epoch(reference, Path(exp_dir) / "train.log")
        last = training_facts(exp_dir)["epochs"]
        if epoch is None or str(epoch) == last:
            if epoch is not None:
                lines.append(f"{name}: its last epoch ({last}) is already the one whose "
                             "training time is closest to the Conformer's.")
            continue
        cells = row_cells(Row(name, [exp_dir], streaming, epoch=epoch), wers, chunk, left)
        minutes = epoch_end_seconds(Path(exp_dir) / "train.log")[epoch] / 60
        rows.append(f"| {name}, epoch {epoch} of {last} | {minutes:.1f} | "
                    f"{log_span_seconds(reference) / 60:.1f} | "
                    + " | ".join(cells[f"greedy {t}"].text() for t in ("test-clean", "test-other"))
                    + f" | {cells['first token ms'].text(0)} | {cells['symbol delay ms'].text(0)} |")
    if rows:
        lines += ["At the Conformer's training time: the Zipformer checkpoint whose epoch ended "
                  "closest to the Conformer's training minutes (the same role: teacher against "
                  "teacher, baseline against baseline), greedy search as above; compare with "
                  "the Conformer rows of the table above.", "",
                  "| model | training minutes to this epoch | Conformer's training minutes | "
                  "greedy test-clean | greedy test-other | first token ms | symbol delay ms |",
                  "|---|---:|---:|---:|---:|---:|---:|"] + rows
    return [""] + lines if lines else []


def zipformer_section(wers, args) -> list:
    """Zipformer beside the Conformer, and the method with a Zipformer teacher and student;
    nothing when run.sh --zipformer true did not run."""
    if not any(k.exp_dir == ZIPFORMER_BASELINE for k in wers):
        return []
    chunk, left = args.decode_chunk, args.decode_left_context
    encoders = [("Conformer teacher (full context)", MODELS[0][0], False),
                ("Conformer streaming baseline", MODELS[1][0], True),
                ("Zipformer teacher (full context)", ZIPFORMER_TEACHER, False),
                ("Zipformer streaming baseline", ZIPFORMER_BASELINE, True)]
    lines = ["", "## Zipformer", "",
             "The same recipe with the Zipformer encoder (`run.sh --zipformer true`): its own "
             "full-context teacher and streaming baseline, trained for the epochs below "
             "(run.sh's `--zipformer-epochs`), fewer than the Conformer's because a Zipformer "
             "step costs more on this CPU; the wall-time ratio below says how close the two "
             "training budgets came. Precision: what `--precision auto` chose (bf16 for the "
             "Conformer on a CPU with native bf16; fp32 for the Zipformer, which bf16 makes "
             "slower on a CPU: README, Zipformer). Optimiser: run.sh's choice for each "
             "encoder (`--zipformer-optimizer`; RESULTS-optimizer.md). Checkpoints are "
             "decoded as run.sh's `--avg` (Conformer) and `--zipformer-avg` (Zipformer) say "
             "(the commands below). Training minutes are from each "
             "train.log; trainings ran side by side, one CPU thread each, so they also depend "
             "on what ran beside them. Greedy and beam WER in %, "
             f"streaming models in simulated streaming with {chunk * 40} ms chunks and "
             f"{left * 40} ms of left context; RTF: chunk-wise greedy recognition from audio, one "
             "thread, mean over the two test sets (" + BESIDE_ANOTHER_JOB + ").", "",
             "| model | parameters | epochs | precision | optimiser | training minutes | "
             "greedy test-clean | greedy test-other | beam test-clean | beam test-other | "
             "first token ms | symbol delay ms | RTF |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    minutes = {}
    for name, exp_dir, streaming in encoders:
        cells = row_cells(Row(name, [exp_dir], streaming), wers, chunk, left)
        facts = training_facts(exp_dir)
        minutes[exp_dir] = facts["minutes"]
        rtf = chunkwise_rtf(wers, exp_dir, chunk, left) if streaming else "-"
        lines.append(f"| {name} | {facts['params']} | {facts['epochs']} | "
                     f"{facts['precision']} | {facts['optimizer']} | {facts['minutes']} | "
                     + " | ".join(cells[f"{tag} {t}"].text() for tag in ("greedy", "beam")
                                  for t in ("test-clean", "test-other"))
                     + f" | {cells['first token ms'].text(0)} | "
                     f"{cells['symbol delay ms'].text(0)} | {rtf} |")
    ratios = [f"{label} {float(minutes[z]) / float(minutes[c]):.2f}x"
              for label, z, c in (("teacher", ZIPFORMER_TEACHER, MODELS[0][0]),
                                  ("streaming baseline", ZIPFORMER_BASELINE, MODELS[1][0]))
              if minutes[z] != "-" and minutes[c] != "-"]
    if ratios:
        lines += ["", "Training wall time, Zipformer / Conformer (the minutes above): "
                  + ", ".join(ratios) + "."]
    lines += equal_time_lines(wers, encoders, chunk, left)
    baseline_name = "Zipformer streaming baseline"
    rows = [Row("Zipformer teacher (full context)", [ZIPFORMER_TEACHER], streaming=False),
            Row(baseline_name, [ZIPFORMER_BASELINE]),
            Row("Zipformer baseline trained on (no teacher, same updates as stages 1+2)",
                [ZIPFORMER_CONTROL], note="control"),
            Row("Zipformer, two stages, adaptive power transform (the method)", [ZIPFORMER_METHOD])]
    cells = table_cells(wers, rows, chunk, left)
    intervals = table_intervals(cells, wers, chunk, left, baseline_name)
    lines += ["", "The method with the Zipformer teacher and student, beside its control, as "
              "in the Distillation section (stage 1's MSE on the encoder outputs, through the "
              "fitted projection; one seed each, so the intervals come from the test utterances "
              "alone). " + BOOTSTRAP_NOTE, ""]
    lines += distillation_table(cells, intervals, baseline_name)
    lines += ["", "What the intervals support:", ""] + interval_conclusions(
        list(intervals.items()), "the Zipformer streaming baseline")
    return lines


def commands_section(args) -> list:
    commands = command_lines(args)
    if not commands:
        return []
    return ["", "## Commands", "", "Run from `egs/librispeech/ASR`, in this order (the "
            "`OMP_NUM_THREADS=1` commands of a stage ran side by side, one CPU thread each: "
            "trainings in lanes, decodes and exports two at a time; "
            "the data came from `./prepare.sh`):", "",
            "```bash"] + commands + ["```"]


def main() -> None:
    args = parse_args()
    if args.study_only:
        if not args.output.is_file():
            raise SystemExit(f"write_results.py --study-only: {args.output} does not exist; "
                             "it writes the study's section into run.sh's RESULTS.md")
        section = study_section(Path("study"), args.decode_chunk, args.decode_left_context)
        args.output.write_text(with_study_section(args.output.read_text(), section))
        return
    wers = collect_wers([Path(d) for d, _ in MODELS])
    # Every experiment folder with decode results: <recipe>/<exp>/[streaming/]<method>/.
    exp_dirs = ({p.parents[1] for p in Path(".").glob("*/exp*/*/wer-summary-*.txt")}
                | {p.parents[2] for p in Path(".").glob("*/exp*/streaming/*/wer-summary-*.txt")})
    all_wers = collect_wers(sorted(exp_dirs))
    wers, all_wers = without_dev_only(wers), without_dev_only(all_wers)
    order = sorted(wers, key=lambda k: (k.exp_dir,) + row_order(k))
    shown = [d for d, _ in MODELS] + [METHOD, *CHUNK_CONV, ZIPFORMER_BASELINE, ZIPFORMER_METHOD]
    # Each model's last epoch decoded: an earlier one beside it (the Zipformer at the
    # Conformer's training time) has its own table.
    last_epoch = {}
    for k in all_wers:
        last_epoch[k.exp_dir] = max(last_epoch.get(k.exp_dir, 0), k.result.epoch)
    order_all = sorted((k for k in all_wers
                        if k.exp_dir in shown and k.result.epoch == last_epoch[k.exp_dir]),
                       key=lambda k: (shown.index(k.exp_dir),) + row_order(k))
    lines = ["# Results", "",
             "Generated by `./local/write_results.py` from the outputs of `./run.sh` (commands at "
             "the end). WER in %.", ""]
    # Figures from two corpus versions are not comparable: say which data they come from.
    config = Path("data/.config")
    if config.is_file():  # "corpus=tts profile=default seed=42 dl_dir=... version=3"
        fields = [f for f in config.read_text().split() if not f.startswith("dl_dir=")]
        lines += [f"Data: `{' '.join(fields)}` (from `data/.config`; `version` is the "
                  "embedded corpus version).", ""]
    lines += wer_section(wers, order)
    lines += streaming_gap_lines(wers, order, args)
    lines += symbols_per_frame_lines(wers, order, args)
    lines += token_density_lines(args)
    lines += parity_section(all_wers, order_all)
    lines += latency_section(order_all)
    lines += aligner_section()
    lines += distillation_section(all_wers, args)
    lines += chunk_conv_section(all_wers)
    lines += zipformer_section(all_wers, args)
    lines += study_section(Path("study"), args.decode_chunk, args.decode_left_context)
    lines += sherpa_section(all_wers)
    lines += run_time_section(args)
    lines += commands_section(args)
    args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
