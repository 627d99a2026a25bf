"""Settings of the Zipformer encoder (Yao et al., arXiv:2310.11230), one value per stack.

Frame rates: the front end turns 100 Hz fbank frames into a 50 Hz sequence; stack i runs at
50 / ``downsampling_factors[i]`` Hz; the output is downsampled once more to 25 Hz (40 ms
frames), the rate of the Conformer's output, so that the transducer, the data filters, the
chunk-wise recogniser and distillation see the same frame count for both encoders.

Chunk sizes and left contexts given to the encoder are in 25 Hz output frames, as for the
Conformer: chunk C is 2C frames at 50 Hz and 2C / d frames in a stack of factor d, so 2C must
be a multiple of every factor (C a multiple of 4 with the default factors up to 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

from icefall_kd.config import option

# Only "causal" exists for the Zipformer; the field is kept so that code written for the
# Conformer's config (``--conv-context``, ``--init-from teacher``) reads the same attribute.
ZIPFORMER_CONV_CONTEXTS = ("causal",)


def _ints(value) -> Tuple[int, ...]:
    return tuple(int(v) for v in value)


@dataclass
class ZipformerConfig:
    """One Zipformer encoder. Tuples have one entry per stack; icefall's LibriSpeech defaults
    are the ``zipformer-paper`` preset (``icefall_kd.model.transducer.PRESETS``)."""

    feature_dim: int = 80
    downsampling_factors: Tuple[int, ...] = (1, 2, 4, 8, 4, 2)  # relative to 50 Hz
    encoder_dims: Tuple[int, ...] = (192, 256, 384, 512, 384, 256)
    layers_per_stack: Tuple[int, ...] = (2, 2, 3, 4, 3, 2)
    num_heads: Tuple[int, ...] = (4, 4, 4, 8, 4, 4)
    feedforward_dims: Tuple[int, ...] = (512, 768, 1024, 1536, 1024, 768)
    conv_kernels: Tuple[int, ...] = (31, 31, 15, 15, 15, 31)
    query_head_dim: int = 32  # query and key dimension per head
    value_head_dim: int = 12
    pos_head_dim: int = 4  # query dimension per head for the relative-position score
    pos_dim: int = 48  # relative-position features before their projection
    embed_channels: Tuple[int, int, int] = (8, 32, 128)  # the front end's three convolutions
    dropout: float = 0.1
    causal: bool = False  # True: streaming (causal convolutions, chunked attention allowed)
    conv_context: str = option("causal", "Streaming Zipformer's convolution: causal only",
                               choices=ZIPFORMER_CONV_CONTEXTS)

    def __post_init__(self) -> None:
        for name in ("downsampling_factors", "encoder_dims", "layers_per_stack", "num_heads",
                     "feedforward_dims", "conv_kernels", "embed_channels"):
            setattr(self, name, _ints(getattr(self, name)))
        stacks = len(self.downsampling_factors)
        for name in ("encoder_dims", "layers_per_stack", "num_heads", "feedforward_dims",
                     "conv_kernels"):
            if len(getattr(self, name)) != stacks:
                raise ValueError(f"zipformer {name} has {len(getattr(self, name))} entries; "
                                 f"downsampling_factors has {stacks} (one per stack)")
        if len(self.embed_channels) != 3:
            raise ValueError(f"zipformer embed_channels needs 3 entries, got {self.embed_channels}")
        if any(d < 1 for d in self.downsampling_factors):
            raise ValueError(f"zipformer downsampling_factors must be >= 1, got "
                             f"{self.downsampling_factors}")
        if any(k % 2 != 1 for k in self.conv_kernels):
            raise ValueError(f"zipformer conv_kernels must be odd, got {self.conv_kernels}")
        if any(d % 4 for d in self.encoder_dims):
            raise ValueError(f"zipformer encoder_dims must be multiples of 4 (the non-linear "
                             f"attention is 3/4 of a stack's width), got {self.encoder_dims}")
        if self.pos_dim % 2:
            raise ValueError(f"zipformer pos_dim must be even, got {self.pos_dim}")
        if self.conv_context not in ZIPFORMER_CONV_CONTEXTS:
            raise ValueError(f"--conv-context {self.conv_context} is not available for the "
                             f"Zipformer; choose from {ZIPFORMER_CONV_CONTEXTS}")

    @property
    def num_stacks(self) -> int:
        return len(self.downsampling_factors)

    @property
    def num_layers(self) -> int:
        """Hidden layers :meth:`ZipformerEncoder.forward` returns with ``return_layers``
        (one per stack; the last is the encoder output), what distillation indexes."""
        return self.num_stacks

    @property
    def output_dim(self) -> int:
        return max(self.encoder_dims)

    @property
    def frame_multiple(self) -> int:
        """50 Hz frames a whole-utterance pass pads to, so every stack's downsampling sees
        whole groups: the lcm of the factors."""
        return math.lcm(*self.downsampling_factors)

    def check_chunking(self, chunk_size: int, left_context: int) -> None:
        """Refuses a chunk size (25 Hz frames) that some stack cannot split into whole
        frames, naming the option."""
        if chunk_size <= 0:
            return
        if not self.causal:
            raise ValueError("chunked attention needs a causal (streaming) encoder")
        if (2 * chunk_size) % self.frame_multiple:
            raise ValueError(
                f"--chunk-size {chunk_size} does not fit the Zipformer's stacks: 2 x chunk "
                f"size (50 Hz frames) must be a multiple of {self.frame_multiple} "
                f"(downsampling factors {self.downsampling_factors})")

    def stack_left_context(self, stack: int, left_context: int) -> int:
        """Left context of ``stack`` in its own frames for ``left_context`` output (25 Hz)
        frames; -1 stays unlimited."""
        if left_context < 0:
            return -1
        return (2 * left_context) // self.downsampling_factors[stack]
