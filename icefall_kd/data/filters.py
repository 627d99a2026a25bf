"""Which cuts training may use, with a count of what was dropped and why."""

from __future__ import annotations

import collections
import logging

import sentencepiece as spm
from lhotse.cut import Cut

from icefall_kd.model.subsampling import frames_after_subsampling


class TrainingCutFilter:
    """A cut predicate that keeps ``min_seconds <= duration <= max_seconds`` and, for the
    pruned RNN-T loss, at least as many encoder frames as tokens (T >= S).

    It counts every decision; :meth:`summary` says how many were dropped for which reason.
    """

    def __init__(self, sp: spm.SentencePieceProcessor, min_seconds: float = 1.0,
                 max_seconds: float = 20.0) -> None:
        self.sp = sp
        self.min_seconds = min_seconds
        self.max_seconds = max_seconds
        self.counts: collections.Counter = collections.Counter()

    def __call__(self, cut: Cut) -> bool:
        if cut.duration < self.min_seconds:
            self.counts["shorter than %.1f s" % self.min_seconds] += 1
            return False
        if cut.duration > self.max_seconds:
            self.counts["longer than %.1f s" % self.max_seconds] += 1
            return False
        num_frames = cut.num_frames if cut.has_features else round(cut.duration / 0.01)
        tokens = self.sp.encode(cut.supervisions[0].text, out_type=int)
        if frames_after_subsampling(num_frames) < len(tokens):
            self.counts["fewer encoder frames than tokens (T < S)"] += 1
            return False
        self.counts["kept"] += 1
        return True

    def summary(self) -> str:
        dropped = {k: v for k, v in self.counts.items() if k != "kept"}
        total = sum(self.counts.values())
        reasons = ", ".join(f"{v} {k}" for k, v in sorted(dropped.items())) or "none"
        return f"kept {self.counts['kept']} of {total} cuts; dropped: {reasons}"

    def log_summary(self) -> None:
        logging.info(f"cut filter: {self.summary()}")
