#!/usr/bin/env python3
"""Pruned vs full (unpruned) RNN-T loss, forward + backward, at vocabulary 500.

Usage:
  .venv/bin/python benchmarks/bench_pruned_loss.py [--output benchmarks/results/pruned_loss.md]

Both losses get the same encoder and decoder outputs; the full loss evaluates the joiner
on every (t, s) node (B, T, S+1, V), the pruned one on prune_range=5 symbols per frame.
Times are medians of 3 runs on this machine's CPU threads; ratios are full / pruned.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

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
    text = (f"Batch {batch}, vocabulary {VOCAB}, joiner dim {model.config.joiner_dim}, "
            f"{torch.get_num_threads()} threads; peak RSS of the process {peak_mb:.0f} MB "
            "(dominated by the full loss).\n\n" + "\n".join(rows) + "\n")
    publish_report(text, args.output)


if __name__ == "__main__":
    main()
