"""The decoding settings a result file's name records, as a typed key.

``decode.py``, ``streaming_decode.py`` and ``sherpa_decode.py`` name their outputs
``<kind>-<test set>-<suffix>.<ext>`` (icefall's recogs-, errs-, wer-summary-, plus latency-
and sherpa-summary-), where the suffix is, in this order::

    epoch-E_avg-A                      checkpoint: epoch E, A epochs averaged
    [_chunk-C_left-context-L]          streaming: chunk C, left context L (encoder frames);
                                       absent for full context
    [_beam-B | _max-sym-per-frame-M]   modified beam search of beam B, or greedy search with
                                       M > 1 symbols per frame (absent: greedy, one symbol)
    [_PRECISION]                       sherpa-onnx decoding of the fp32 / int8 export
    [_use-averaged-model]              the running-average weights (--use-averaged-model)

:meth:`ResultKey.to_suffix` writes it and :meth:`ResultKey.parse` reads it back; the two
round-trip, and a name that ``to_suffix`` would not write is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

_SUFFIX = re.compile(
    r"epoch-(?P<epoch>\d+)_avg-(?P<avg>\d+)"
    r"(?:_chunk-(?P<chunk_size>\d+)_left-context-(?P<left_context>\d+))?"
    r"(?:_beam-(?P<beam_size>\d+)|_max-sym-per-frame-(?P<max_sym_per_frame>\d+))?"
    r"(?:_(?P<precision>fp\d+|int\d+))?"
    r"(?P<use_averaged_model>_use-averaged-model)?"
)
_GRAMMAR = ("epoch-E_avg-A[_chunk-C_left-context-L][_beam-B|_max-sym-per-frame-M]"
            "[_PRECISION][_use-averaged-model]")


@dataclass(frozen=True)
class ResultKey:
    epoch: int
    avg: int
    chunk_size: Optional[int] = None  # encoder frames (40 ms); None: full context
    left_context: Optional[int] = None  # encoder frames; None exactly when chunk_size is
    beam_size: Optional[int] = None  # modified beam search; None: greedy search
    max_sym_per_frame: int = 1  # greedy search only
    precision: Optional[str] = None  # sherpa_decode.py's export precision (fp32, int8)
    use_averaged_model: bool = False

    def __post_init__(self) -> None:
        if (self.chunk_size is None) != (self.left_context is None):
            raise ValueError(f"{self}: chunk_size and left_context go together")
        if self.beam_size is not None and self.max_sym_per_frame != 1:
            raise ValueError(f"{self}: max_sym_per_frame is a greedy-search setting")
        if self.max_sym_per_frame < 1:
            raise ValueError(f"{self}: max_sym_per_frame must be at least 1")

    @property
    def streaming(self) -> bool:
        """Decoded chunk by chunk (simulated or from audio), not with full context."""
        return self.chunk_size is not None

    @property
    def beam_search(self) -> bool:
        return self.beam_size is not None

    def to_suffix(self) -> str:
        suffix = f"epoch-{self.epoch}_avg-{self.avg}"
        if self.streaming:
            suffix += f"_chunk-{self.chunk_size}_left-context-{self.left_context}"
        if self.beam_search:
            suffix += f"_beam-{self.beam_size}"
        elif self.max_sym_per_frame != 1:
            suffix += f"_max-sym-per-frame-{self.max_sym_per_frame}"
        if self.precision is not None:
            suffix += f"_{self.precision}"
        if self.use_averaged_model:
            suffix += "_use-averaged-model"
        return suffix

    @classmethod
    def parse(cls, suffix: str) -> "ResultKey":
        """The key whose :meth:`to_suffix` is ``suffix``; ValueError for any other text."""
        match = _SUFFIX.fullmatch(suffix)
        if match is None:
            raise ValueError(f"{suffix!r} is not a result-file suffix ({_GRAMMAR})")
        fields = match.groupdict()

        def number(name: str) -> Optional[int]:
            return None if fields[name] is None else int(fields[name])

        key = cls(epoch=int(fields["epoch"]), avg=int(fields["avg"]),
                  chunk_size=number("chunk_size"), left_context=number("left_context"),
                  beam_size=number("beam_size"),
                  max_sym_per_frame=(1 if fields["max_sym_per_frame"] is None
                                     else int(fields["max_sym_per_frame"])),
                  precision=fields["precision"],
                  use_averaged_model=fields["use_averaged_model"] is not None)
        # Leading zeros or an explicit _max-sym-per-frame-1: not a name the writers produce.
        if key.to_suffix() != suffix:
            raise ValueError(f"{suffix!r} is not a result-file suffix as the decoders write "
                             f"it (they would write {key.to_suffix()!r})")
        return key
