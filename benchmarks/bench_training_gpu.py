#!/usr/bin/env python3
r"""Training steps on a GPU (or the CPU): seconds of audio per second, peak memory, and the
share of each step spent in the pruned RNN-T loss, for model presets.

Usage (after prepare.sh; from the repository root):
  ICEFALL_KD_RNNT_BACKEND=torch .venv/bin/python benchmarks/bench_training_gpu.py \
      --recipe-dir egs/librispeech/ASR --lang-dir data/lang_bpe_200 --presets small paper \
      [--device cuda] [--batches 12] [--output benchmarks/results/training_gpu.md]

Each preset trains the streaming model (dynamic chunks) for --batches steps (forward,
pruned loss, backward, AdamW step) on the same batches of train-clean-100 (max-duration
200 s, num-workers 0), under the trainer's precision on that device (bf16 autocast where
the GPU supports it, else fp16 with a grad scaler; fp32 on the CPU); the first 2 steps are
warm-up. The loss share is the time inside ``pruned_transducer_loss`` (simple loss, ranges,
joiner, pruned loss; forward only, with the device synchronised around it) over the step
time. benchmarks/gpu_check.sh runs this on CUDA.
"""

import argparse
import os
import time
from pathlib import Path

import torch

import icefall_kd.loss.transducer_loss as transducer_loss
from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes.common import load_bpe
from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective
from icefall_kd.utils import HelpFormatter, peak_rss_mb, publish_report


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precision_for(device: torch.device):
    """(autocast dtype or None, name), as the trainer's --precision auto chooses."""
    if device.type != "cuda":
        return None, "fp32"
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, "bf16"
    return torch.float16, "fp16 + grad scaler"


def measure(model, objective, batches, device):
    """(s audio / s, share of the step in the loss, peak memory MB)."""
    dtype, _ = precision_for(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_time = [0.0]
    real_loss = transducer_loss.pruned_transducer_loss

    def timed_loss(*args, **kwargs):
        synchronize(device)
        start = time.perf_counter()
        out = real_loss(*args, **kwargs)
        synchronize(device)
        loss_time[0] += time.perf_counter() - start
        return out

    transducer_loss.pruned_transducer_loss = timed_loss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    audio = elapsed = in_loss = 0.0
    try:
        for i, batch in enumerate(batches):
            synchronize(device)
            start, loss_time[0] = time.perf_counter(), 0.0
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                info = objective(model, batch, 10_000, True)
            optimizer.zero_grad()
            scaler.scale(info.loss / info.frames).backward()
            scaler.step(optimizer)
            scaler.update()
            synchronize(device)
            if i >= 2:
                elapsed += time.perf_counter() - start
                in_loss += loss_time[0]
                audio += sum(c.duration for c in batch["supervisions"]["cut"])
    finally:
        transducer_loss.pruned_transducer_loss = real_loss
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else peak_rss_mb())
    return audio / elapsed, in_loss / elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--lang-dir", default="data/lang_bpe_200")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--max-duration", type=float, default=200.0)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output.resolve() if args.output else None
    device = torch.device(args.device)
    os.chdir(args.recipe_dir)
    sp = load_bpe(Path(args.lang_dir))
    data = AsrDataModule(DataConfig(manifest_dir=Path("data/fbank"), max_duration=args.max_duration,
                                    num_workers=0, num_buckets=2, drop_last=False))
    loader = data.train_dataloader(data.cuts("train-clean-100"))
    batches = [b for _, b in zip(range(args.batches), loader)]
    if len(batches) < 3:
        raise SystemExit(f"only {len(batches)} batches of train-clean-100 (2 are warm-up); "
                         "lower --max-duration")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    memory = "peak GPU memory MB" if device.type == "cuda" else "peak RSS MB"
    rows = [f"| preset | parameters | s audio / s | share of the step in the loss | {memory} |",
            "|---|---:|---:|---:|---:|"]
    from icefall_kd.loss.rnnt_backend import backend_for

    for preset in args.presets:
        torch.manual_seed(0)
        model = build_transducer(preset, sp.get_piece_size(), causal=True).to(device)
        objective = TransducerObjective(sp, ChunkChoice((8, 16, 32, -1), (16, 32, 64, -1)))
        speed, share, peak = measure(model, objective, batches, device)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        rows.append(f"| {preset} | {params:.2f} M | {speed:.0f} | {share:.0%} | {peak:.0f} |")
    text = (f"{where}, precision {precision_for(device)[1]}, pruned-loss backend "
            f"{backend_for(device).__name__}, torch {torch.__version__}; streaming model, "
            f"{args.batches - 2} timed steps of up to {args.max_duration:.0f} s of audio.\n\n"
            + "\n".join(rows) + "\n")
    publish_report(text, output)


if __name__ == "__main__":
    main()
