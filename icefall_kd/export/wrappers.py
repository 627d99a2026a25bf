"""The transducer's parts with sherpa-onnx's interfaces, for TorchScript and ONNX export.

Shapes: N streams or utterances, T feature frames (10 ms), C chunk size and L left context
in encoder frames (40 ms), D encoder dimension, J joiner dimension, K convolution kernel,
V vocabulary, num_layers encoder layers.

sherpa-onnx's streaming Conformer keeps its states batch-second (dim 2 is N) and counts
processed frames in feature frames; the model's :class:`StreamingState` is batch-first and
counts encoder frames. The wrappers convert at the boundary, so the trained model is used
unchanged. Encoder and decoder outputs are projected to J, as sherpa-onnx's joiner expects.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from icefall_kd.model.conformer import StreamingState
from icefall_kd.model.subsampling import SUBSAMPLING_FACTOR
from icefall_kd.model.transducer import Transducer
from icefall_kd.streaming.recognizer import StreamingConfig


def to_sherpa_states(state: StreamingState) -> Tuple[torch.Tensor, torch.Tensor]:
    """Model state -> sherpa-onnx's (cached_attn (num_layers, L, N, D),
    cached_conv (num_layers, K-1, N, D))."""
    return state.attn_cache.transpose(1, 2), state.conv_cache.permute(0, 3, 1, 2)


def from_sherpa_states(cached_attn: torch.Tensor, cached_conv: torch.Tensor,
                       processed_frames: torch.Tensor) -> StreamingState:
    """Inverse of :func:`to_sherpa_states`; processed_frames (N,) int64 feature frames ->
    the model's encoder frames (sherpa-onnx passes multiples of decode_chunk_len = 4C)."""
    return StreamingState(
        attn_cache=cached_attn.transpose(1, 2),
        conv_cache=cached_conv.permute(0, 2, 3, 1),
        processed_frames=torch.div(processed_frames, SUBSAMPLING_FACTOR, rounding_mode="floor"),
    )


class StreamingEncoderForSherpa(nn.Module):
    """One chunk of a streaming (causal) encoder in sherpa-onnx's ``conformer`` layout.

    forward(x (N, T, 80), cached_attn (num_layers, L, N, D), cached_conv (num_layers, K-1, N, D),
    processed_frames (N,) int64 feature frames already consumed)
    -> encoder_out (N, C, J) projected by ``joiner.encoder_proj``, new_cached_attn,
    new_cached_conv (shapes as the inputs). T = 4C + 3: the chunk plus the 3 frames of
    look-ahead the subsampling reads; every window is full (sherpa-onnx pads the end).
    """

    def __init__(self, model: Transducer, chunk_size: int, left_context: int) -> None:
        super().__init__()
        if not model.causal:
            raise ValueError("streaming export needs a streaming (causal) model; export a "
                             "full-context model with the offline exporter")
        if chunk_size <= 0 or left_context <= 0:
            raise ValueError(f"streaming export needs a fixed chunk size and left context > 0, "
                             f"got chunk {chunk_size}, left context {left_context}")
        self.encoder = model.encoder
        self.encoder_proj = model.joiner.encoder_proj
        self.config = StreamingConfig(chunk_size, left_context)

    def forward(self, x: torch.Tensor, cached_attn: torch.Tensor, cached_conv: torch.Tensor,
                processed_frames: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        state = from_sherpa_states(cached_attn, cached_conv, processed_frames)
        lengths = torch.full_like(processed_frames, x.shape[1])
        encoder_out, _, new_state = self.encoder.streaming_forward(x, lengths, state)
        new_attn, new_conv = to_sherpa_states(new_state)
        return self.encoder_proj(encoder_out), new_attn, new_conv

    def init_states(self, batch_size: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """Zero (cached_attn, cached_conv), as sherpa-onnx builds them from the metadata."""
        state = self.encoder.init_state(batch_size, self.config.left_context)
        return to_sherpa_states(state)

    def example_inputs(self, batch_size: int = 1) -> Tuple[torch.Tensor, ...]:
        attn, conv = self.init_states(batch_size)
        x = torch.zeros(batch_size, self.config.window, self.encoder.config.feature_dim)
        return x, attn, conv, torch.zeros(batch_size, dtype=torch.int64)


class OfflineEncoderForSherpa(nn.Module):
    """Whole utterances: x (N, T, 80), x_lens (N,) int64 -> encoder_out (N, T', J)
    projected, encoder_out_lens (N,) int64 with T' = ((T - 1) // 2 - 1) // 2."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.encoder_proj = model.joiner.encoder_proj

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        encoder_out, encoder_out_lens = self.encoder(x, x_lens)
        return self.encoder_proj(encoder_out), encoder_out_lens

    def example_inputs(self, batch_size: int = 2, num_frames: int = 100
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.full((batch_size,), num_frames, dtype=torch.int64)
        lengths[1:] = num_frames * 3 // 4  # padded utterances in the example batch
        return torch.zeros(batch_size, num_frames, self.encoder.config.feature_dim), lengths


class DecoderForSherpa(nn.Module):
    """y (N, context_size) int64 (-1 = no token yet) -> decoder_out (N, J), projected by
    ``joiner.decoder_proj``."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.decoder_proj = model.joiner.decoder_proj
        self.context_size = model.config.context_size

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder_proj(self.decoder(y, need_pad=False)[:, -1])

    def example_inputs(self, batch_size: int = 2) -> Tuple[torch.Tensor]:
        y = torch.zeros(batch_size, self.context_size, dtype=torch.int64)
        y[:, :-1] = -1
        return (y,)


class JoinerForSherpa(nn.Module):
    """encoder_out (N, J), decoder_out (N, J), both projected -> logit (N, V), raw."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.joiner = model.joiner
        self.joiner_dim = model.config.joiner_dim

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.joiner(encoder_out, decoder_out, project_input=False)

    def example_inputs(self, batch_size: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
        return (torch.zeros(batch_size, self.joiner_dim), torch.zeros(batch_size, self.joiner_dim))
