#!/usr/bin/env python3
r"""The cost of distillation: training step time of each stage relative to the streaming
baseline's, with the teacher's targets computed on the fly or read from exported files.

Usage (after prepare.sh; from the repository root):
  .venv/bin/python benchmarks/bench_distillation.py --recipe-dir egs/librispeech/ASR \
      [--preset small] [--lang-dir data/lang_bpe_100] [--batches 22] \
      [--output benchmarks/results/distillation.md]

Every setting runs --batches training steps (forward, losses, backward, AdamW step) on the
same real batches (max-duration 100 s, no augmentation, num-workers 0, dynamic chunks); the
first 2 are warm-up and not timed. Teacher and student are freshly initialised models of the
preset (speed does not depend on the weights). Exported targets are written to a temporary
folder first (float16, as kd_teacher_export does) and read through lhotse in each step.
"""

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import torch
from lhotse import CutSet

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.distill.objective import DistillationObjective, DistillConfig
from icefall_kd.distill.teacher import FrozenTeacher, export_teacher_targets
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes.common import load_bpe
from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective
from icefall_kd.utils import HelpFormatter, peak_rss_mb, publish_report


# Stage 2 as run.sh trains it: each model's own alignment (the teacher's simple loss and
# pruned band computed too), adaptive exponent, Hinton mode.
TOKEN_KD = dict(output_kd_scale=0.1, output_kd="token", kd_hinton=True)


def seconds_per_step(model, objective, batches) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    elapsed = 0.0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        info = objective(model, batch, 10_000, True)
        optimizer.zero_grad()
        (info.loss / info.frames).backward()
        optimizer.step()
        if i >= 2:
            elapsed += time.perf_counter() - start
    return elapsed / (len(batches) - 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--preset", default="small")
    parser.add_argument("--lang-dir", default="data/lang_bpe_100")
    parser.add_argument("--batches", type=int, default=22)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output.resolve() if args.output else None
    os.chdir(args.recipe_dir)
    sp = load_bpe(Path(args.lang_dir))
    data = AsrDataModule(DataConfig(manifest_dir=Path("data/fbank"), max_duration=100,
                                    num_workers=0, enable_spec_aug=False))
    cuts = data.cuts("train-clean-100").subset(first=600)
    torch.manual_seed(0)
    teacher = FrozenTeacher(build_transducer(args.preset, sp.get_piece_size(), causal=False))
    chunks = ChunkChoice((8, 16, 32, -1), (16, 32, 64, -1))
    with tempfile.TemporaryDirectory() as tmp:
        exported = CutSet.from_cuts(export_teacher_targets(
            teacher, data.eval_dataloader(cuts), [-1], Path(tmp) / "arrays"))
        loader = data.train_dataloader(exported)
        batches = [b for _, b in zip(range(args.batches), loader)]
        settings = [
            ("streaming baseline (transducer loss only)", None),
            ("stage 1: hidden MSE, on-the-fly teacher", dict(hidden_kd_scale=0.3)),
            ("stage 1: hidden MSE, exported targets",
             dict(hidden_kd_scale=0.3, teacher_targets="exported")),
            ("stage 2: per-node output KD, on-the-fly teacher", dict(output_kd_scale=0.5, output_kd="lattice", kd_hinton=False)),
            ("stage 2: per-node output KD, exported encoder outputs",
             dict(output_kd_scale=0.5, output_kd="lattice", kd_hinton=False, teacher_targets="exported")),
            ("stage 2: per-token output KD (run.sh), on-the-fly teacher", TOKEN_KD),
            ("stage 2: per-token output KD (run.sh), exported encoder outputs",
             dict(TOKEN_KD, teacher_targets="exported")),
            ("one stage: MSE + per-token KL, on-the-fly teacher",
             dict(TOKEN_KD, hidden_kd_scale=0.3)),
        ]
        rows = ["| setting | s / step | relative to the baseline |", "|---|---:|---:|"]
        reference = None
        for name, kd in settings:
            torch.manual_seed(0)
            random.seed(0)  # the same chunk sizes drawn for every setting
            student = build_transducer(args.preset, sp.get_piece_size(), causal=True)
            transducer = TransducerObjective(sp, chunks, warm_step=0, ctc_loss_scale=0.5)
            objective = (transducer if kd is None
                         else DistillationObjective(transducer, teacher, DistillConfig(**kd)))
            seconds = seconds_per_step(student, objective, batches)
            reference = reference or seconds
            rows.append(f"| {name} | {seconds:.3f} | {seconds / reference:.2f} |")
            print(rows[-1], flush=True)
    peak_mb = peak_rss_mb()
    text = (f"Preset `{args.preset}`, {args.lang_dir}, {args.batches - 2} timed steps of up to "
            f"100 s of audio, {torch.get_num_threads()} threads, peak RSS {peak_mb:.0f} MB.\n\n"
            + "\n".join(rows) + "\n")
    publish_report(text, output)


if __name__ == "__main__":
    main()
