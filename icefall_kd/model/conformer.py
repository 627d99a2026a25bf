"""A Conformer encoder that runs full-context (the teacher) or chunk-wise streaming (the
student), with an explicit state API for chunk-by-chunk inference.

Shapes: N batch, T frames after subsampling (40 ms each), D model dimension, H heads,
C chunk size and L left context, both in encoder frames.

Streaming mode (``causal=True``):
- attention: frame t of chunk c = t // C sees frames [c*C - L, (c+1)*C) (all of its own
  chunk, L frames before it; L = -1 means everything before);
- convolution: causal depthwise convolution (left padding only).
Whole-utterance training with these masks ("simulated streaming") and chunk-wise inference
with cached states compute the same function; the test suite checks that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn

from icefall_kd.model.subsampling import Conv2dSubsampling


@dataclass
class EncoderConfig:
    feature_dim: int = 80
    d_model: int = 144
    num_layers: int = 6
    num_heads: int = 4
    ff_dim: int = 576
    conv_kernel: int = 15
    dropout: float = 0.1
    max_relative_distance: int = 64  # relative distances are clipped to +-this
    causal: bool = False  # True: causal convolution, chunked attention allowed


def chunk_attention_mask(
    num_frames: int, chunk_size: int, left_context: int, device=None
) -> Optional[torch.Tensor]:
    """(T, T) bool mask, True where query t may NOT attend key s; None for full context."""
    if chunk_size <= 0:
        return None
    t = torch.arange(num_frames, device=device)
    chunk_start = (t // chunk_size) * chunk_size
    key = t.unsqueeze(0)
    allowed = key < (chunk_start + chunk_size).unsqueeze(1)
    if left_context >= 0:
        allowed &= key >= (chunk_start - left_context).unsqueeze(1)
    return ~allowed


class RelativePositionBias(nn.Module):
    """A learned bias per head and clipped relative distance (key - query)."""

    def __init__(self, num_heads: int, max_distance: int) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))

    def forward(self, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """query_pos: (Tq,), key_pos: (Tk,) -> (H, Tq, Tk)."""
        distance = (key_pos.unsqueeze(0) - query_pos.unsqueeze(1)).clamp(
            -self.max_distance, self.max_distance
        )
        return self.table[:, distance + self.max_distance]


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, max_distance: int) -> None:
        super().__init__()
        assert d_model % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.position_bias = RelativePositionBias(num_heads, max_distance)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pos: torch.Tensor,
        key_pos: torch.Tensor,
        mask: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """queries: (N, Tq, D), keys: (N, Tk, D) (layer inputs; projected here);
        mask: bool, broadcastable to (N, Tq, Tk), True = masked. -> (N, Tq, D)."""
        n, tq, d = queries.shape
        tk = keys.shape[1]
        q = self.query(queries).view(n, tq, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.key_value(keys).chunk(2, dim=-1)
        k = k.reshape(n, tk, self.num_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(n, tk, self.num_heads, self.head_dim).transpose(1, 2)
        bias = self.position_bias(query_pos, key_pos).unsqueeze(0)  # (1, H, Tq, Tk)
        if mask is not None:
            bias = bias.masked_fill(mask.unsqueeze(1), float("-inf"))
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        # A query whose keys are all masked (only padded frames) gives NaN; zero it.
        out = torch.nan_to_num(out, nan=0.0)
        return self.out(out.transpose(1, 2).reshape(n, tq, d))


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv (causal or centred), LayerNorm, SiLU, pointwise."""

    def __init__(self, d_model: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        assert kernel_size % 2 == 1
        self.causal = causal
        self.kernel_size = kernel_size
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: Optional[torch.Tensor],
        cache: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (N, T, D); pad_mask: (N, T) True at padding; cache: (N, D, K-1) of the previous
        depthwise inputs (streaming only). Returns (N, T, D) and the new cache."""
        x = nn.functional.glu(self.pointwise_in(x), dim=-1)
        if pad_mask is not None:
            x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        x = x.transpose(1, 2)  # (N, D, T)
        new_cache = None
        if cache is not None:
            x = torch.cat([cache, x], dim=2)
            new_cache = x[:, :, x.shape[2] - (self.kernel_size - 1) :]
        elif self.causal:
            x = nn.functional.pad(x, (self.kernel_size - 1, 0))
        else:
            x = nn.functional.pad(x, ((self.kernel_size - 1) // 2,) * 2)
        x = self.depthwise(x).transpose(1, 2)
        x = self.pointwise_out(nn.functional.silu(self.norm(x)))
        return x, new_cache


class FeedForward(nn.Module):
    # Dropout is applied to the residual branches only (ConformerLayer): on a 2-core CPU,
    # drawing dropout masks for the wide hidden layer and the attention weights cost more
    # than half of the forward pass.
    def __init__(self, d_model: int, ff_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model), nn.Linear(d_model, ff_dim), nn.SiLU(), nn.Linear(ff_dim, d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConformerLayer(nn.Module):
    """Macaron layer: x + FF/2, x + MHSA, x + Conv, x + FF/2, LayerNorm."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ff1 = FeedForward(d, config.ff_dim)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = SelfAttention(d, config.num_heads, config.max_relative_distance)
        self.conv_norm = nn.LayerNorm(d)
        self.conv = ConvolutionModule(d, config.conv_kernel, config.causal)
        self.ff2 = FeedForward(d, config.ff_dim)
        self.final_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        attn_mask: Optional[torch.Tensor],
        pad_mask: Optional[torch.Tensor],
        attn_cache: Optional[torch.Tensor] = None,
        cache_positions: Optional[torch.Tensor] = None,
        cache_mask: Optional[torch.Tensor] = None,
        conv_cache: Optional[torch.Tensor] = None,
    ):
        """Whole-utterance call: x (N, T, D), positions (T,), attn_mask (N or 1, T, T).
        Streaming call: also attn_cache (N, L, D) of earlier attention inputs at
        cache_positions (L,), cache_mask (N, L) True where a cache entry is not valid yet,
        and conv_cache (N, D, K-1). Returns x and, when streaming, the new caches."""
        x = x + 0.5 * self.dropout(self.ff1(x))
        attn_in = self.attn_norm(x)
        if attn_cache is None:
            keys, key_pos, mask = attn_in, positions, attn_mask
        else:
            keys = torch.cat([attn_cache, attn_in], dim=1)
            key_pos = torch.cat([cache_positions, positions])
            mask = torch.cat([cache_mask, pad_mask], dim=1).unsqueeze(1)  # (N, 1, L + C)
        x = x + self.dropout(self.attn(attn_in, keys, positions, key_pos, mask))
        conv_out, new_conv_cache = self.conv(self.conv_norm(x), pad_mask, conv_cache)
        x = x + self.dropout(conv_out)
        x = x + 0.5 * self.dropout(self.ff2(x))
        x = self.final_norm(x)
        if attn_cache is None:
            return x
        left = attn_cache.shape[1]
        new_attn_cache = keys[:, keys.shape[1] - left :] if left > 0 else attn_cache
        return x, new_attn_cache, new_conv_cache


@dataclass
class StreamingState:
    """What crosses a chunk boundary, for a batch of N streams.

    attn_cache: (num_layers, N, L, D) attention inputs of the last L frames;
    conv_cache: (num_layers, N, D, K-1) depthwise-convolution inputs of the last K-1 frames;
    processed_frames: (N,) int64 encoder frames already produced (masks the cache while it
    is not yet full).
    """

    attn_cache: torch.Tensor
    conv_cache: torch.Tensor
    processed_frames: torch.Tensor


def stack_states(states: List[StreamingState]) -> StreamingState:
    """N single-stream states -> one state of batch N."""
    return StreamingState(
        attn_cache=torch.cat([s.attn_cache for s in states], dim=1),
        conv_cache=torch.cat([s.conv_cache for s in states], dim=1),
        processed_frames=torch.cat([s.processed_frames for s in states]),
    )


def unstack_states(state: StreamingState) -> List[StreamingState]:
    """Inverse of :func:`stack_states`."""
    return [
        StreamingState(
            attn_cache=state.attn_cache[:, i : i + 1],
            conv_cache=state.conv_cache[:, i : i + 1],
            processed_frames=state.processed_frames[i : i + 1],
        )
        for i in range(state.processed_frames.shape[0])
    ]


class ConformerEncoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = Conv2dSubsampling(config.feature_dim, config.d_model)
        self.layers = nn.ModuleList(ConformerLayer(config) for _ in range(config.num_layers))

    @property
    def output_dim(self) -> int:
        return self.config.d_model

    def forward(
        self,
        x: torch.Tensor,
        x_lens: torch.Tensor,
        chunk_size: int = -1,
        left_context: int = -1,
        return_layers: bool = False,
    ):
        """Whole utterances. x: (N, T_in, F), x_lens: (N,).

        ``chunk_size`` > 0 simulates streaming with chunks of that many encoder frames and
        ``left_context`` frames before each chunk (-1: unlimited); it needs ``causal=True``.
        Returns (N, T, D), (N,) lengths, and with ``return_layers`` the list of every
        layer's output (N, T, D).
        """
        if chunk_size > 0 and not self.config.causal:
            raise ValueError("chunked attention needs a causal (streaming) encoder")
        x, lengths = self.embed(x, x_lens)
        num_frames = x.shape[1]
        positions = torch.arange(num_frames, device=x.device)
        pad_mask = positions.unsqueeze(0) >= lengths.unsqueeze(1)  # (N, T)
        attn_mask = pad_mask.unsqueeze(1)  # (N, 1, T): padded keys
        chunk_mask = chunk_attention_mask(num_frames, chunk_size, left_context, x.device)
        if chunk_mask is not None:
            attn_mask = attn_mask | chunk_mask.unsqueeze(0)
        layer_outputs = []
        for layer in self.layers:
            x = layer(x, positions, attn_mask, pad_mask)
            layer_outputs.append(x)
        if return_layers:
            return x, lengths, layer_outputs
        return x, lengths

    # ---------------------------------------------------------------- streaming API
    def init_state(
        self, batch_size: int, left_context: int, device=None, dtype=torch.float32
    ) -> StreamingState:
        """Zero caches for ``batch_size`` new streams."""
        c = self.config
        return StreamingState(
            attn_cache=torch.zeros(c.num_layers, batch_size, left_context, c.d_model,
                                   device=device, dtype=dtype),
            conv_cache=torch.zeros(c.num_layers, batch_size, c.d_model, c.conv_kernel - 1,
                                   device=device, dtype=dtype),
            processed_frames=torch.zeros(batch_size, dtype=torch.int64, device=device),
        )

    def streaming_forward(
        self, chunk: torch.Tensor, chunk_lens: torch.Tensor, state: StreamingState
    ) -> Tuple[torch.Tensor, torch.Tensor, StreamingState]:
        """One chunk for N streams.

        chunk: (N, 4C + 3, F) feature frames: the C encoder frames of this chunk plus the 3
        frames of look-ahead the subsampling reads (consecutive calls overlap by 3 frames).
        chunk_lens: (N,) valid feature frames in ``chunk`` (less at the end of a stream).
        Returns encoder output (N, C, D), (N,) valid output frames, and the new state.
        The left context is the state's cache length.
        """
        if not self.config.causal:
            raise ValueError("streaming_forward needs a causal (streaming) encoder")
        x, lengths = self.embed(chunk, chunk_lens)
        n, num_frames, _ = x.shape
        lengths = lengths.clamp(min=0)
        left = state.attn_cache.shape[2]
        start = state.processed_frames  # (N,)
        positions = torch.arange(num_frames, device=x.device)
        pad_mask = positions.unsqueeze(0) >= lengths.unsqueeze(1)
        # Cache slot j holds frame start - left + j; it is valid once that frame exists.
        # Positions only enter through differences, so chunk-relative positions suffice.
        cache_positions = torch.arange(-left, 0, device=x.device)
        cache_mask = (cache_positions.unsqueeze(0) + start.unsqueeze(1)) < 0
        new_attn, new_conv = [], []
        for i, layer in enumerate(self.layers):
            x, attn_cache, conv_cache = layer(
                x, positions, None, pad_mask,
                attn_cache=state.attn_cache[i], cache_positions=cache_positions,
                cache_mask=cache_mask, conv_cache=state.conv_cache[i],
            )
            new_attn.append(attn_cache)
            new_conv.append(conv_cache)
        new_state = StreamingState(
            attn_cache=torch.stack(new_attn),
            conv_cache=torch.stack(new_conv),
            processed_frames=start + lengths,
        )
        return x, lengths, new_state
