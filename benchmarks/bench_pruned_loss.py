#!/usr/bin/env python3
"""Pruned vs full (unpruned) RNN-T loss, forward + backward, at vocabulary 500; and the
pruned loss with the torch backend beside fast_rnnt.

Usage:
  .venv/bin/python benchmarks/bench_pruned_loss.py [--output benchmarks/results/pruned_loss.md]

Both losses get the same encoder and decoder outputs; the full loss evaluates the joiner
on every (t, s) node (B, T, S+1, V), the pruned one on prune_range=5 symbols per frame.
The second table times the whole pruned loss (simple loss, ranges, joiner, pruned loss,
backward) and the lattice recursion alone (forward and occupation gradients of the
simple loss's lattice), each with fast_rnnt and with the torch backend
(icefall_kd/loss/rnnt_torch.py), and gives the largest relative difference of the two
losses. Times are medians of 3 runs on this machine's CPU threads.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from icefall_kd.loss import rnnt_backend as backend_choice
from icefall_kd.loss import rnnt_torch
from icefall_kd.loss.rnnt_backend import rnnt_backend
from icefall_kd.loss.transducer_loss import pad_token_ids, pruned_transducer_loss
from icefall_kd.model.transducer import build_transducer
from icefall_kd.utils import HelpFormatter, peak_rss_mb, publish_report

VOCAB = 500


def full_loss(model, encoder_out, encoder_lens, token_ids):
    symbols = pad_token_ids(token_ids, 0, encoder_out.device)
    decoder_out = model.decoder(torch.cat([torch.zeros_like(symbols[:, :1]), symbols], 1))
    logits = model.joiner(encoder_out.unsqueeze(2), decoder_out.unsqueeze(1))  # (B,T,S+1,V)
    boundary = torch.zeros(len(token_ids), 4, dtype=torch.int64)
    boundary[:, 2] = torch.tensor([len(t) for t in token_ids])
    boundary[:, 3] = encoder_lens
    return rnnt_backend().rnnt_loss(logits, symbols, termination_symbol=0, boundary=boundary,
                                    reduction="sum")


def timed(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = fn()
        loss.backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def with_backend(module, fn):
    """fn() with the CPU tensors' backend set to ``module``."""
    before = backend_choice._chosen.get("cpu")
    backend_choice._chosen["cpu"] = module
    try:
        return fn()
    finally:
        if before is None:
            backend_choice._chosen.pop("cpu")
        else:
            backend_choice._chosen["cpu"] = before


def timed_forward(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def backend_rows(model, batch: int) -> list:
    import fast_rnnt

    rows = ["| T (frames) | S (tokens) | pruned loss, fast_rnnt s | torch backend s | torch / fast_rnnt "
            "| recursion, fast_rnnt s | torch backend s | torch / fast_rnnt | loss rel. diff |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t, s in [(50, 10), (100, 20), (200, 40), (400, 80)]:
        encoder_out = torch.randn(batch, t, model.encoder.output_dim, requires_grad=True)
        lens = torch.full((batch,), t)
        tokens = [torch.randint(3, VOCAB, (s,)).tolist() for _ in range(batch)]
        pipeline, losses = {}, {}
        for module in (fast_rnnt, rnnt_torch):
            def run():
                out = pruned_transducer_loss(model, encoder_out, lens, tokens)
                losses[module] = (out.simple_loss.detach(), out.pruned_loss.detach())
                return out.simple_loss + out.pruned_loss
            pipeline[module] = with_backend(module, lambda: timed(run))
        px = torch.randn(batch, s, t + 1).log_softmax(1)
        py = torch.randn(batch, s + 1, t).log_softmax(1)
        px[:, :, t] = float("-inf")
        recursion = {m: timed_forward(lambda: m.mutual_information_recursion(px, py, return_grad=True))
                     for m in (fast_rnnt, rnnt_torch)}
        diff = max(float((a - b).abs() / b.abs()) for a, b in zip(losses[rnnt_torch], losses[fast_rnnt]))
        rows.append(f"| {t} | {s} | {pipeline[fast_rnnt]:.3f} | {pipeline[rnnt_torch]:.3f} | "
                    f"{pipeline[rnnt_torch] / pipeline[fast_rnnt]:.2f} | {recursion[fast_rnnt]:.4f} | "
                    f"{recursion[rnnt_torch]:.4f} | {recursion[rnnt_torch] / recursion[fast_rnnt]:.1f} | "
                    f"{diff:.1e} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_transducer("default", VOCAB, causal=False, dropout=0.0)
    batch = 8
    rows = ["| T (frames) | S (tokens) | full s | pruned s | full / pruned |", "|---:|---:|---:|---:|---:|"]
    for t, s in [(50, 10), (100, 20), (200, 40), (400, 80)]:
        encoder_out = torch.randn(batch, t, model.encoder.output_dim, requires_grad=True)
        lens = torch.full((batch,), t)
        tokens = [torch.randint(3, VOCAB, (s,)).tolist() for _ in range(batch)]
        full = timed(lambda: full_loss(model, encoder_out, lens, tokens))
        pruned = timed(lambda: pruned_transducer_loss(model, encoder_out, lens, tokens).pruned_loss)
        rows.append(f"| {t} | {s} | {full:.3f} | {pruned:.3f} | {full / pruned:.1f} |")
    peak_mb = peak_rss_mb()
    torch.manual_seed(0)
    versus = backend_rows(model, batch)
    text = (f"Batch {batch}, vocabulary {VOCAB}, joiner dim {model.config.joiner_dim}, "
            f"{torch.get_num_threads()} threads; peak RSS of the process {peak_mb:.0f} MB "
            "(dominated by the full loss).\n\n" + "\n".join(rows) + "\n\n"
            "The pruned loss (forward and backward) and the lattice recursion alone with the "
            "torch backend beside fast_rnnt (CPU, same process, same inputs); loss rel. diff: "
            "largest relative difference of the simple and pruned losses between the two.\n\n"
            + "\n".join(versus) + "\n")
    publish_report(text, args.output)


if __name__ == "__main__":
    main()
