#!/usr/bin/env python3
r"""Training throughput of model presets: seconds of audio per second and peak memory, for
the full-context teacher and the streaming model, on real batches of the prepared corpus;
with ``--against REF`` also for the code of git revision REF, timed in the same run.

Usage (after prepare.sh; from the repository root):
  .venv/bin/python benchmarks/bench_training.py --recipe-dir egs/librispeech/ASR \
      --presets small default --against 7aa13c2 --batches 22 --threads 1 \
      --output benchmarks/results/training.md
  .venv/bin/python benchmarks/bench_training.py --recipe-dir egs/librispeech/ASR \
      --lang-dir data/lang_bpe_100 --presets small zipformer-small --side-by-side \
      --batches 14 --threads 1 --output benchmarks/results/training_zipformer.md

How it measures:
- the batches are drawn once (train-clean-100, max-duration 100 s as in run.sh's default
  profile, SpecAugment on, num-workers 0) and every model trains on the same ones: forward,
  pruned RNN-T loss, backward, AdamW step. The streaming model's chunk size and left context
  per step are drawn once from the training choices (chunks 8,16,32,-1; left 16,32,64,-1)
  and given to both revisions;
- each (revision, model) runs in its own worker process (the reference from a temporary
  ``git worktree`` of REF, imported ahead of the installed package), so its code and its
  peak memory are its own. Workers take turns step by step (old, new, new, old, ...) and
  never run at the same time, so load on the machine hits both alike;
- the first 2 steps are warm-up and not timed. Peak memory is the worker's peak RSS
  (model, optimizer, batches and the step's activations; the same batches in every worker).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARMUP_STEPS = 2
MODELS = (("teacher (full context)", False), ("streaming (dynamic chunks)", True))
TRAIN_CHUNKS = ((8, 16, 32, -1), (16, 32, 64, -1))


# ------------------------------------------------------------------------------ worker
def worker(args: argparse.Namespace) -> None:
    """One model of one revision: reads JSON commands on stdin, answers on stdout."""
    sys.path.insert(0, str(args.code_root))
    import torch

    import icefall_kd

    if not Path(icefall_kd.__file__).resolve().is_relative_to(args.code_root.resolve()):
        raise RuntimeError(f"imported {icefall_kd.__file__}, not the code in {args.code_root}")
    from icefall_kd.model.transducer import build_transducer
    from icefall_kd.recipes.common import load_bpe
    from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective
    from icefall_kd.utils import peak_rss_mb

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sp = load_bpe(args.lang_dir)
    batches = torch.load(args.batches_file, weights_only=False)
    model = build_transducer(args.preset, sp.get_piece_size(), args.causal)
    objective = TransducerObjective(sp, ChunkChoice())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    reply = {"parameters": sum(p.numel() for p in model.parameters())}
    print(json.dumps(reply), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "quit" in command:
            print(json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)
            return
        batch = batches[command["batch"]]
        objective.chunks = ChunkChoice((command["chunk"],), (command["left"],))
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            info = objective(model, batch, 10_000, True)
        optimizer.zero_grad()
        (info.loss / info.frames).backward()
        optimizer.step()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


class Worker:
    def __init__(self, code_root: Path, preset: str, causal: bool, batches_file: Path,
                 lang_dir: Path, threads: int, bf16: bool = False) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker",
                   "--code-root", str(code_root), "--presets", preset,
                   "--batches-file", str(batches_file), "--lang-dir", str(lang_dir),
                   "--threads", str(threads)] + (["--causal"] if causal else []) + (
                       ["--bf16"] if bf16 else [])
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        self.parameters = self._read()["parameters"]
        self.seconds = 0.0

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args} died (exit {self.process.wait()})")
        return json.loads(line)

    def step(self, batch: int, chunk: int, left: int) -> float:
        self.process.stdin.write(json.dumps({"batch": batch, "chunk": chunk,
                                             "left": left}) + "\n")
        self.process.stdin.flush()
        return self._read()["seconds"]

    def close(self) -> float:
        self.process.stdin.write(json.dumps({"quit": True}) + "\n")
        self.process.stdin.flush()
        peak = self._read()["peak_rss_mb"]
        self.process.wait()
        return peak


# ------------------------------------------------------------------------------ parent
def draw_batches(recipe_dir: Path, lang_dir: Path, count: int, max_duration: float,
                 path: Path) -> list:
    """Saves ``count`` training batches (only what the objective reads) to ``path``;
    returns the seconds of audio of each."""
    import torch

    from icefall_kd.data.datamodule import AsrDataModule, DataConfig

    data = AsrDataModule(DataConfig(manifest_dir=Path("data/fbank"),
                                    max_duration=max_duration, num_workers=0))
    loader = data.train_dataloader(data.cuts("train-clean-100"))
    batches, durations = [], []
    for _, batch in zip(range(count), loader):
        sup = batch["supervisions"]
        batches.append({"inputs": batch["inputs"],
                        "supervisions": {"num_frames": sup["num_frames"],
                                         "text": list(sup["text"])}})
        durations.append(sum(c.duration for c in sup["cut"]))
    torch.save(batches, path)
    return durations


def run_workers(specs: dict, causal: bool, durations: list, schedule: list,
                batches_file: Path, lang_dir: Path, threads: int) -> dict:
    """Trains one model per spec (label -> (code root, preset, bf16)) on the same steps,
    alternating. -> {label: stats}"""
    workers = {label: Worker(root, preset, causal, batches_file, lang_dir, threads, bf16)
               for label, (root, preset, bf16) in specs.items()}
    names = list(workers)
    for i, (chunk, left) in enumerate(schedule):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            seconds = workers[name].step(i, chunk, left)
            if i >= WARMUP_STEPS:
                workers[name].seconds += seconds
    audio = sum(durations[WARMUP_STEPS:])
    return {name: {"parameters": w.parameters, "audio_per_second": audio / w.seconds,
                   "seconds": w.seconds, "peak_rss_mb": w.close()}
            for name, w in workers.items()}


def run_model(revisions: dict, preset: str, causal: bool, durations: list, schedule: list,
              batches_file: Path, lang_dir: Path, threads: int, bf16: bool,
              bf16_reference: bool = False) -> dict:
    """One model per revision in fp32, and with ``bf16`` (``bf16_reference``) the current
    code (the reference) under bf16 autocast beside them. -> {label: stats}"""
    specs = {name: (root, preset, False) for name, root in revisions.items()}
    for name in ([n for n in revisions if n != "current"] if bf16_reference else []):
        specs[f"{name}, bf16"] = (revisions[name], preset, True)
    if bf16:
        specs["current, bf16"] = (revisions["current"], preset, True)
    return run_workers(specs, causal, durations, schedule, batches_file, lang_dir, threads)


def reference_worktree(ref: str, directory: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                    str(directory), ref], check=True)
    return directory


def bf16_note(args) -> str:
    if args.side_by_side:
        return "; every preset under bf16 autocast" if args.bf16 else ""
    labels = ([f"`{args.against}, bf16`"] if args.bf16_reference else []) + (
        ["`current, bf16`"] if args.bf16 else [])
    if not labels:
        return ""
    return f"; {' and '.join(labels)}: that code under bf16 autocast, the other rows fp32"


def main() -> None:
    # No icefall_kd import before the worker check: a worker imports its own revision's.
    class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                        argparse.RawDescriptionHelpFormatter):
        pass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--presets", nargs="+", default=["default"])
    parser.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"),
                        help="Relative to --recipe-dir")
    parser.add_argument("--batches", type=int, default=22,
                        help="Steps per model, the first 2 of them untimed")
    parser.add_argument("--max-duration", type=float, default=100.0,
                        help="Seconds of audio per batch")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per worker")
    parser.add_argument("--against", default=None,
                        help="Git revision to compare with, timed in the same run")
    parser.add_argument("--bf16", action="store_true",
                        help="Also time the current code under bf16 autocast (a third "
                             "worker; the other rows stay fp32)")
    parser.add_argument("--bf16-reference", action="store_true",
                        help="Also time the --against revision under bf16 autocast (what "
                             "--precision auto trained with there on a bf16 CPU)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="Time the --presets against each other (current code, steps "
                             "alternating between them) instead of against --against")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the chunk draws")
    parser.add_argument("--output", type=Path, default=None)
    # Worker-only options (the parent starts workers with them).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code-root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--batches-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--causal", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.preset = args.presets[0]
        return worker(args)
    if args.bf16_reference and not args.against:
        parser.error("--bf16-reference times the --against revision under bf16; give "
                     "--against REF")
    if args.side_by_side and (args.against or len(args.presets) < 2):
        parser.error("--side-by-side compares two or more --presets of the current code; "
                     "it does not combine with --against")

    sys.path.insert(0, str(REPO))
    from icefall_kd.utils import publish_report

    output = args.output.resolve() if args.output else None
    recipe_dir = args.recipe_dir.resolve()
    lang_dir = recipe_dir / args.lang_dir
    os.chdir(recipe_dir)  # the manifests name feature files relative to it
    rng = random.Random(args.seed)
    chunk_sizes, left_contexts = TRAIN_CHUNKS
    streaming_schedule = []
    for _ in range(args.batches):  # as ChunkChoice.sample draws them in training
        chunk = rng.choice(chunk_sizes)
        streaming_schedule.append((chunk, rng.choice(left_contexts) if chunk > 0 else -1))
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        tmp = Path(tmp)
        batches_file = tmp / "batches.pt"
        durations = draw_batches(recipe_dir, lang_dir, args.batches, args.max_duration,
                                 batches_file)
        revisions = {}
        if args.against:
            revisions[args.against] = reference_worktree(args.against, tmp / "reference")
        revisions["current"] = REPO
        try:
            sections = []
            if args.side_by_side:
                # The presets against each other (current code), alternating step by step.
                rows = ["| model | preset | parameters | s audio / s | relative to "
                        f"`{args.presets[0]}` | peak RSS MB |", "|---|---|---:|---:|---:|---:|"]
                for name, causal in MODELS:
                    schedule = streaming_schedule if causal else [(-1, -1)] * args.batches
                    specs = {preset: (REPO, preset, args.bf16) for preset in args.presets}
                    stats = run_workers(specs, causal, durations, schedule, batches_file,
                                        lang_dir, args.threads)
                    base = stats[args.presets[0]]["audio_per_second"]
                    for preset, st in stats.items():
                        rows.append(f"| {name} | {preset} | {st['parameters'] / 1e6:.2f} M | "
                                    f"{st['audio_per_second']:.0f} | "
                                    f"{st['audio_per_second'] / base:.2f}x | "
                                    f"{st['peak_rss_mb']:.0f} |")
                        print(rows[-1], flush=True)
                sections.append("Presets side by side:\n\n" + "\n".join(rows) + "\n")
            for preset in ([] if args.side_by_side else args.presets):
                rows = ["| model | code | parameters | s audio / s | speed-up | peak RSS MB |",
                        "|---|---|---:|---:|---:|---:|"]
                for name, causal in MODELS:
                    schedule = streaming_schedule if causal else [(-1, -1)] * args.batches
                    stats = run_model(revisions, preset, causal, durations, schedule,
                                      batches_file, lang_dir, args.threads, args.bf16,
                                      args.bf16_reference)
                    base = stats[next(iter(stats))]["audio_per_second"]
                    for rev, s in stats.items():
                        rows.append(f"| {name} | {rev} | {s['parameters'] / 1e6:.2f} M | "
                                    f"{s['audio_per_second']:.0f} | "
                                    f"{s['audio_per_second'] / base:.2f}x | "
                                    f"{s['peak_rss_mb']:.0f} |")
                    print(rows[-1], flush=True)
                sections.append(f"Preset `{preset}`:\n\n" + "\n".join(rows) + "\n")
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tmp / "reference")], check=False)
    draws = ", ".join(f"{c}/{l}" for c, l in streaming_schedule[WARMUP_STEPS:])
    current = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "icefall_kd"],
                           capture_output=True, text=True).stdout.strip()
    text = (f"`current` is {current}{' plus uncommitted changes' if dirty else ''}"
            f"{', speed-up relative to ' + args.against if args.against else ''}"
            f"{bf16_note(args)}. "
            f"{args.batches - WARMUP_STEPS} timed steps per model (after {WARMUP_STEPS} "
            f"warm-up steps) on the same {sum(durations[WARMUP_STEPS:]):.0f} s of audio "
            f"(batches of up to {args.max_duration:.0f} s), {args.threads} thread(s) per "
            f"worker, steps alternating between the "
            f"{'presets' if args.side_by_side else 'revisions'}. Streaming chunk/left "
            f"context per timed step: {draws}.\n\n" + "\n".join(sections))
    publish_report(text, output)


if __name__ == "__main__":
    main()
