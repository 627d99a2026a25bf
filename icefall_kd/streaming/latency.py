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
import json
from pathlib import Path
from typing import List, Optional, Sequence

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


def utterance_record(cut, sp, hyp, first_token_seconds: Optional[float]) -> dict:
    """What latency and result files need about one decoded utterance. Reference word
    times: exact where the corpus has them (alignment["word"]), else the teacher's
    alignment (alignment["word_teacher"])."""
    sup = cut.supervisions[0]
    alignment = sup.alignment or {}
    pieces = [sp.id_to_piece(t) for t in hyp.tokens]
    return {
        "cut_id": cut.id,
        "ref_words": sup.text.split(),
        "ref_word_starts": reference_word_starts(alignment.get("word") or alignment.get("word_teacher")),
        "hyp_words": sp.decode(hyp.tokens).split(),
        "hyp_word_starts": [f * ENCODER_FRAME_SECONDS
                            for f in word_start_frames(pieces, hyp.timestamps)],
        "first_token_seconds": first_token_seconds,
        "token_times": [round(f * ENCODER_FRAME_SECONDS, 2) for f in hyp.timestamps],
    }


def record_symbol_delays(record: dict) -> List[float]:
    """Symbol delays (seconds) of one :func:`utterance_record`; none without word times."""
    if not record["ref_word_starts"] or len(record["ref_word_starts"]) != len(record["ref_words"]):
        return []
    return symbol_delays(record["ref_words"], record["ref_word_starts"], record["hyp_words"],
                         record["hyp_word_starts"])


def latency_summary(records) -> dict:
    first, first_vs_onset, delays = [], [], []
    for r in records:
        if r["first_token_seconds"] is not None:
            first.append(r["first_token_seconds"])
            if r["ref_word_starts"]:
                first_vs_onset.append(r["first_token_seconds"] - r["ref_word_starts"][0])
        delays += record_symbol_delays(r)
    return {
        "first_token_latency": LatencySummary.of(first).__dict__,
        "first_token_after_first_word_onset": LatencySummary.of(first_vs_onset).__dict__,
        "symbol_delay": LatencySummary.of(delays).__dict__,
        "symbol_delay_std_ms": float(np.std(delays) * 1000) if len(delays) > 1 else float("nan"),
    }


def write_latency_files(res_dir: Path, test_set: str, suffix: str, records: List[dict],
                        extra: Optional[dict] = None) -> dict:
    """latency-<set>-<suffix>.json (summary) and timestamps-<set>-<suffix>.jsonl."""
    summary = latency_summary(records)
    summary.update(extra or {})
    with open(res_dir / f"latency-{test_set}-{suffix}.json", "w") as f:
        json.dump(summary, f, indent=2)
    with open(res_dir / f"timestamps-{test_set}-{suffix}.jsonl", "w") as f:
        for r in records:
            # The per-utterance latencies are what the paired bootstrap of RESULTS.md reads.
            f.write(json.dumps({"cut_id": r["cut_id"], "hyp": r["hyp_words"],
                                "token_times": r["token_times"],
                                "first_token_seconds": r["first_token_seconds"],
                                "symbol_delays": [round(d, 4) for d in record_symbol_delays(r)]})
                    + "\n")
    return summary
