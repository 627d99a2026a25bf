#!/usr/bin/env python3
r"""Does bf16 autocast train as well as fp32? The convergence check of issue 14.

The default profile's streaming baseline (run.sh's stage 2 training: its preset, BPE folder
and training options, read from ``local/profile_settings.sh``) trains from the same seeds
in fp32 and under bf16 autocast, one CPU thread each, an fp32 and a bf16 run of the same
seed side by side (so their wall times are comparable). Every epoch is decoded on dev-clean
(greedy search, simulated streaming at run.sh's decoding chunk). The report gives each WER,
the paired bootstrap interval of bf16 against fp32 (same seed, seeds pooled), and the
seed-to-seed difference of fp32, which is the noise the precision's effect is judged by.

Usage (after prepare.sh; from the repository root):
  .venv/bin/python benchmarks/bench_bf16_convergence.py --recipe-dir egs/librispeech/ASR \
      --seeds 1 2 --epochs 2 --output benchmarks/results/bf16_convergence.md

Trainings resume from their checkpoints and decodes are skipped when their results exist,
so an interrupted run continues where it stopped (outputs under ``--work-dir``).
"""

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16")


def recipe_training_options(recipe_dir: Path) -> tuple:
    """(training options of run.sh's default-profile streaming baseline, BPE folder), from
    the file run.sh itself reads them from."""
    script = ('profile=default; corpus=tts; vocab_size=""; train_parts=""; model_preset=""; '
              'num_epochs=""; avg=""; max_duration=""; teacher_targets=""; zipformer_preset=""; '
              'zipformer_epochs=""; parallel_training=true; . local/profile_settings.sh; '
              'train_options "$model_preset"; printf "%s\\n" "${extra_train[@]}"; '
              'echo "@lang_dir=$lang_dir"')
    lines = subprocess.run(["bash", "-c", script], cwd=recipe_dir, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    lang_dir = next(l.split("=", 1)[1] for l in lines if l.startswith("@lang_dir="))
    return [l for l in lines if not l.startswith("@lang_dir=")], lang_dir


def train_pair(recipe_dir: Path, runs: list, options: list, epochs: int) -> None:
    """Trains the runs (precision, seed, exp_dir) side by side to ``epochs`` epochs, resuming
    from their checkpoints."""
    processes = {}
    for precision, seed, exp_dir in runs:
        exp_dir.mkdir(parents=True, exist_ok=True)
        if (exp_dir / f"epoch-{epochs}.pt").is_file():
            continue
        command = ([sys.executable, "./transducer_streaming/train.py", "--exp-dir",
                    str(exp_dir)] + options
                   + ["--num-epochs", str(epochs), "--seed", str(seed),
                      "--precision", precision])
        print("+", shlex.join(command), flush=True)
        log = open(exp_dir / "train.log", "a")
        processes[exp_dir] = (subprocess.Popen(command, cwd=recipe_dir, stdout=log,
                                               stderr=subprocess.STDOUT,
                                               env=dict(os.environ, OMP_NUM_THREADS="1")), log)
    for exp_dir, (process, log) in processes.items():
        if process.wait() != 0:
            raise SystemExit(f"training failed (exit {process.returncode}); see "
                             f"{exp_dir / 'train.log'}")
        log.close()


def decode_dev(recipe_dir: Path, exp_dir: Path, epoch: int, lang_dir: str, chunk: int,
               left: int) -> Path:
    """Greedy simulated-streaming decode of dev-clean with epoch ``epoch`` -> recogs file."""
    res_dir = exp_dir / f"dev-epoch-{epoch}"
    command = [sys.executable, "./transducer_streaming/decode.py", "--exp-dir", str(exp_dir),
               "--epoch", str(epoch), "--avg", "1", "--lang-dir", lang_dir,
               "--max-duration", "300", "--num-workers", "1",
               "--decoding-method", "greedy_search", "--test-sets", "dev-clean",
               "--chunk-size", str(chunk), "--left-context", str(left),
               "--res-dir", str(res_dir), "--skip-existing", "true"]
    recogs = sorted(res_dir.glob("recogs-dev-clean*.txt"))
    if not recogs:
        print("+", shlex.join(command), flush=True)
        subprocess.run(command, cwd=recipe_dir, check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, OMP_NUM_THREADS="2"))
        recogs = sorted(res_dir.glob("recogs-dev-clean*.txt"))
    if len(recogs) != 1:
        raise SystemExit(f"expected one dev-clean recogs file in {res_dir}, found {recogs}")
    return recogs[0]


def main() -> None:
    sys.path.insert(0, str(REPO))
    from icefall_kd.utils import HelpFormatter

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--work-dir", type=Path, default=Path("bf16-check"),
                        help="Where the trainings go, relative to --recipe-dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=2,
                        help="Epochs per training; every epoch is decoded")
    parser.add_argument("--decode-chunk", type=int, default=8,
                        help="Encoder frames per chunk (run.sh's --decode-chunk)")
    parser.add_argument("--decode-left-context", type=int, default=32,
                        help="Left-context frames (run.sh's --decode-left-context)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    from icefall_kd.reporting.paired_bootstrap import (
        DEFAULT_RESAMPLES,
        relative_wer_reduction,
        utterance_errors,
    )
    from icefall_kd.reporting.training_log import log_span_seconds
    from icefall_kd.training.trainer import cpu_has_native_bf16
    from icefall_kd.utils import publish_report

    if not cpu_has_native_bf16():
        raise SystemExit("this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 training "
                         "would be emulated and slower, so there is nothing to check here")
    output = args.output.resolve() if args.output else None
    recipe_dir = args.recipe_dir.resolve()
    work = recipe_dir / args.work_dir
    options, lang_dir = recipe_training_options(recipe_dir)
    exp = {(p, s): work / f"{p}-seed{s}" for p in PRECISIONS for s in args.seeds}
    for seed in args.seeds:
        train_pair(recipe_dir, [(p, seed, exp[p, seed]) for p in PRECISIONS], options,
                   args.epochs)
    errors = {(p, s, e): utterance_errors(decode_dev(recipe_dir, exp[p, s], e, lang_dir,
                                                     args.decode_chunk,
                                                     args.decode_left_context))
              for p in PRECISIONS for s in args.seeds for e in range(1, args.epochs + 1)}

    def wer(key) -> float:
        errs = errors[key].values()
        return 100.0 * sum(e for e, _ in errs) / sum(n for _, n in errs)

    def minutes(p, s) -> str:
        span = log_span_seconds(exp[p, s] / "train.log")
        return f"{span / 60:.1f}" if span else "-"

    epochs = range(1, args.epochs + 1)
    lines = ["| precision | seed | " + " | ".join(f"dev-clean WER % after epoch {e}"
                                                  for e in epochs) + " | training minutes |",
             "|---|---:|" + "---:|" * (args.epochs + 1)]
    for p in PRECISIONS:
        for s in args.seeds:
            lines.append(f"| {p} | {s} | " + " | ".join(f"{wer((p, s, e)):.2f}" for e in epochs)
                         + f" | {minutes(p, s)} |")
    lines += ["", "| comparison | epoch | relative WER reduction [95% interval] |",
              "|---|---:|---|"]
    for e in epochs:
        pairs = [(errors["fp32", s, e], errors["bf16", s, e]) for s in args.seeds]
        lines.append(f"| bf16 against fp32, same seed ({len(args.seeds)} seeds pooled) | {e} | "
                     f"{relative_wer_reduction(pairs).text(100, unit='%')} |")
        for s, pair in zip(args.seeds, pairs):
            lines.append(f"| bf16 against fp32, seed {s} | {e} | "
                         f"{relative_wer_reduction([pair]).text(100, unit='%')} |")
        first, *others = args.seeds
        for p in PRECISIONS:
            for s in others:
                pair = [(errors[p, first, e], errors[p, s, e])]
                lines.append(f"| {p}: seed {s} against seed {first} (seed noise) | {e} | "
                             f"{relative_wer_reduction(pair).text(100, unit='%')} |")
    command = ("`.venv/bin/python benchmarks/bench_bf16_convergence.py "
               + " ".join(shlex.quote(a) for a in sys.argv[1:]) + "`")
    current = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    text = (f"Command: {command} (code {current}).\n\n"
            f"run.sh's default-profile streaming baseline ({shlex.join(options)}), "
            f"{args.epochs} epochs per training, one CPU thread each, fp32 and bf16 of a "
            f"seed side by side (training minutes: the span of each train.log, pauses "
            f"between resumed runs left out; they depend on what else ran on the machine). "
            f"dev-clean, greedy search, simulated streaming with "
            f"{args.decode_chunk * 40} ms chunks and {args.decode_left_context * 40} ms of "
            f"left context, epoch checkpoints (no averaging). Relative WER reduction: "
            f"(fp32 - bf16) / fp32 for the precision, (first seed - other seed) / first seed "
            f"for the seed noise; paired bootstrap over dev-clean utterances "
            f"({DEFAULT_RESAMPLES} replicates, 95% percentile intervals), with several seeds "
            f"the seeds resampled too.\n\n"
            + "\n".join(lines) + "\n")
    publish_report(text, output)


if __name__ == "__main__":
    main()
