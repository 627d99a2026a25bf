"""Latency of streaming recognition, measured against reference word times.

- First-token latency: time from the start of the utterance until the first non-blank token
  is available, i.e. until the audio of the chunk that emitted it (with its look-ahead) has
  arrived; also the same relative to the reference onset of the first word.
- Symbol delay (icefall's ``write_error_stats_with_timestamps``): for every correctly
  recognised word, hypothesis start minus reference start. A hypothesis word starts at the
  encoder frame of its first token; frame t is at t * 40 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import kaldialign
import numpy as np

ENCODER_FRAME_SECONDS = 0.04


def word_start_frames(pieces: Sequence[str], frames: Sequence[int]) -> List[int]:
    """Encoder frame of each word's first BPE piece (pieces starting with '▁' open a word)."""
    starts = []
    for piece, frame in zip(pieces, frames):
        if piece.startswith("\u2581") or not starts:
            starts.append(frame)
    return starts


def symbol_delays(ref_words: Sequence[str], ref_starts: Sequence[float],
                  hyp_words: Sequence[str], hyp_starts: Sequence[float]) -> List[float]:
    """Delays (seconds) of the hypothesis words that match a reference word in the
    kaldialign alignment."""
    # Walk the alignment of the word strings, counting positions in both sequences.
    pairs = kaldialign.align(list(ref_words), list(hyp_words), "*")
    delays = []
    i = j = 0
    for ref, hyp in pairs:
        if ref != "*" and hyp != "*":
            if ref == hyp:
                delays.append(hyp_starts[j] - ref_starts[i])
            i += 1
            j += 1
        elif ref != "*":
            i += 1
        else:
            j += 1
    return delays


@dataclass
class LatencySummary:
    mean_ms: float
    median_ms: float
    p90_ms: float
    count: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "LatencySummary":
        if not seconds:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        ms = 1000.0 * np.asarray(seconds)
        return cls(float(ms.mean()), float(np.median(ms)), float(np.percentile(ms, 90)), len(ms))

    def __str__(self) -> str:
        return (f"mean {self.mean_ms:.0f} ms, median {self.median_ms:.0f} ms, "
                f"p90 {self.p90_ms:.0f} ms (n={self.count})")


def reference_word_starts(alignment: Optional[list]) -> List[float]:
    return [item.start for item in (alignment or []) if item.symbol]
