#!/usr/bin/env python3
r"""Training throughput of a model preset: seconds of audio per second and peak memory,
for the full-context teacher and the streaming model, on real batches of the prepared corpus.

Usage (after prepare.sh; from the repository root):
  .venv/bin/python benchmarks/bench_training.py --recipe-dir egs/librispeech/ASR \
      [--preset default] [--batches 12] [--output benchmarks/results/training.md]

Each model runs --batches training steps (forward, pruned loss, backward, AdamW step) on the
same batches (max-duration 200 s, SpecAugment on, num-workers 0); the first 2 steps are
warm-up and not timed. The streaming/teacher ratio is measured in the same run.
"""

import argparse
import os
import time
from pathlib import Path

import torch

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes.common import load_bpe
from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective
from icefall_kd.utils import HelpFormatter, peak_rss_mb, publish_report


def measure(model, objective, batches):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    audio = elapsed = 0.0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        info = objective(model, batch, 10_000, True)
        optimizer.zero_grad()
        (info.loss / info.frames).backward()
        optimizer.step()
        if i >= 2:
            elapsed += time.perf_counter() - start
            audio += sum(c.duration for c in batch["supervisions"]["cut"])
    return audio / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--preset", default="default")
    parser.add_argument("--lang-dir", default="data/lang_bpe_500")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output.resolve() if args.output else None
    os.chdir(args.recipe_dir)
    sp = load_bpe(Path(args.lang_dir))
    data = AsrDataModule(DataConfig(manifest_dir=Path("data/fbank"), max_duration=200,
                                    num_workers=0))
    loader = data.train_dataloader(data.cuts("train-clean-100"))
    batches = [b for _, b in zip(range(args.batches), loader)]
    rows = ["| model | parameters | s audio / s | relative to teacher |", "|---|---:|---:|---:|"]
    results = {}
    for name, causal, chunks in (
        ("teacher (full context)", False, ChunkChoice()),
        ("streaming (dynamic chunks)", True, ChunkChoice((8, 16, 32, -1), (16, 32, 64, -1))),
    ):
        torch.manual_seed(0)
        model = build_transducer(args.preset, sp.get_piece_size(), causal)
        results[name] = measure(model, TransducerObjective(sp, chunks), batches)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        rows.append(f"| {name} | {params:.2f} M | {results[name]:.0f} | "
                    f"{results[name] / results['teacher (full context)']:.2f} |")
    peak_mb = peak_rss_mb()
    text = (f"Preset `{args.preset}`, {args.batches - 2} timed steps of up to 200 s of audio, "
            f"{torch.get_num_threads()} threads, peak RSS {peak_mb:.0f} MB.\n\n"
            + "\n".join(rows) + "\n")
    publish_report(text, output)


if __name__ == "__main__":
    main()
