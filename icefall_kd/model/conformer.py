"""A Conformer encoder that runs full-context (the teacher) or chunk-wise streaming (the
student), with an explicit state API for chunk-by-chunk inference.

Shapes: N batch, T frames after subsampling (40 ms each), D model dimension, H heads,
C chunk size and L left context, both in encoder frames.

Streaming mode (``causal=True``):
- attention: frame t of chunk c = t // C sees frames [c*C - L, (c+1)*C) (all of its own
  chunk, L frames before it; L = -1 means everything before);
- convolution (``conv_context``), kernel K, reach R = (K-1)//2:
  ``causal``: depthwise kernel over frames [t-(K-1), t] (left padding only);
  ``chunk``: the teacher's centred kernel over [t-R, t+R], with the frames at or after the
  end of t's chunk, (c+1)*C, read as zeros: no look-ahead past the chunk, so no latency
  beyond the chunk's own. Full context (C = -1) is then exactly the teacher's convolution.
  Both carry the same (N, D, K-1) cache of past inputs (the sherpa-onnx contract sizes it
  from ``cnn_module_kernel``); ``chunk`` reads only its last R columns.
Whole-utterance training with these masks ("simulated streaming") and chunk-wise inference
with cached states compute the same function; the test suite checks that.

Attention cost: a streaming model's whole-utterance pass attends blocked over chunks (each
chunk's C queries against its own keys and its L left-context keys, O(T x (C + L)) instead of
O(T^2); :class:`AttentionLayout`), falling back to masked full attention where that is cheaper
(L = -1, or utterances barely longer than C + L). The full-context teacher attends to all
frames. Masks and position indices are built once per batch, shared by every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn

from icefall_kd.config import option
from icefall_kd.model.subsampling import Conv2dSubsampling

CONV_CONTEXTS = ("causal", "chunk")


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
    causal: bool = False  # True: streaming convolution, chunked attention allowed
    # Stored in the checkpoint's model config; checkpoints without it are "causal".
    conv_context: str = option(
        "causal", "Streaming encoder's depthwise convolution: causal (past frames only) or "
        "chunk (the teacher's centred kernel, reading the past and the rest of the frame's own "
        "chunk, zeros past the chunk's end; full context is then the teacher's convolution). "
        "Not given (None): causal for a new model, its own for a model continued from "
        "--init-from",
        choices=CONV_CONTEXTS)

    def __post_init__(self) -> None:
        if self.conv_context not in CONV_CONTEXTS:
            raise ValueError(f"conv_context must be one of {CONV_CONTEXTS}, "
                             f"got {self.conv_context!r}")
        if self.conv_kernel % 2 != 1:
            raise ValueError(f"conv_kernel must be odd, got {self.conv_kernel}")

    @property
    def conv_mode(self) -> str:
        """What each layer's ConvolutionModule computes: "centred" (the full-context
        teacher), "causal" or "chunk" (streaming, as ``conv_context`` says)."""
        return self.conv_context if self.causal else "centred"


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


def chunk_conv_future_keep(num_frames: int, chunk_size: int, reach: int, device=None,
                           dtype: torch.dtype = torch.float32) -> Optional[torch.Tensor]:
    """(reach, T) 0/1 weights of the chunk convolution's look-ahead taps: row j-1 is 1 where
    frame t may read frame t + j (j = 1..reach), i.e. t + j is still inside t's chunk
    [(t // C) * C, (t // C + 1) * C). None for full context (``chunk_size`` <= 0)."""
    if chunk_size <= 0:
        return None
    t = torch.arange(num_frames, device=device)
    chunk_end = (t // chunk_size + 1) * chunk_size  # (T,)
    offset = torch.arange(1, reach + 1, device=device).unsqueeze(1)  # (R, 1)
    return (t.unsqueeze(0) + offset < chunk_end.unsqueeze(0)).to(dtype)


class RelativePositionBias(nn.Module):
    """A learned bias per head and clipped relative distance (key - query)."""

    def __init__(self, num_heads: int, max_distance: int) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))

    def index(self, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """query_pos: (..., Tq), key_pos: (..., Tk) -> (..., Tq, Tk) int64 columns of the
        table (the same for every layer: built once per batch)."""
        distance = (key_pos.unsqueeze(-2) - query_pos.unsqueeze(-1)).clamp(
            -self.max_distance, self.max_distance
        )
        return distance + self.max_distance

    def forward(self, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """query_pos: (Tq,), key_pos: (Tk,) -> (H, Tq, Tk)."""
        return self.table[:, self.index(query_pos, key_pos)]


@dataclass
class AttentionLayout:
    """How a whole-utterance pass attends, built once per batch and shared by all layers.

    Full (``chunk_size`` = 0): queries (N, T) against keys (N, T); ``mask`` (N, 1, Tq', T)
    bool, True = masked, with Tq' = 1 (key padding only) or T (chunk mask);
    ``bias_index`` (T, T).
    Blocked (``chunk_size`` = C > 0, ``left_context`` = L >= 0): the frames are padded to
    nC * C; chunk c's C queries attend to the W = L + C keys of frames [c*C - L, (c+1)*C);
    ``mask`` (N, nC, 1, 1, W) (frames before 0 or past the utterance's end) and
    ``bias_index`` (C, W), the same for every chunk since bias depends on distance only;
    ``window_index`` (nC * W,) the frame each key slot reads, clamped into [0, T) (the
    slots outside are masked, so any frame will do, and no padded copy of K and V is made).
    """

    mask: torch.Tensor
    bias_index: torch.Tensor
    chunk_size: int = 0
    left_context: int = 0
    window_index: Optional[torch.Tensor] = None  # blocked: (nC * W,) frame of each key slot

    @staticmethod
    def build(lengths: torch.Tensor, num_frames: int, chunk_size: int, left_context: int,
              position_bias: RelativePositionBias) -> "AttentionLayout":
        """lengths: (N,) valid frames; ``chunk_size`` <= 0: full context."""
        device = lengths.device
        positions = torch.arange(num_frames, device=device)
        key_padding = (positions.unsqueeze(0) >= lengths.unsqueeze(1))  # (N, T)
        num_chunks = -(-num_frames // chunk_size) if chunk_size > 0 else 1
        window = chunk_size + left_context
        # Blocked costs nC * C * W score entries against T * T for masked full attention;
        # both compute the same function, so this is a choice of speed only.
        if chunk_size > 0 and left_context >= 0 and num_chunks * chunk_size * window < (
                num_frames * num_frames):
            chunk_start = torch.arange(num_chunks, device=device) * chunk_size
            key_pos = (chunk_start - left_context).unsqueeze(1) + torch.arange(
                window, device=device)  # (nC, W) frame of each key slot
            mask = (key_pos.unsqueeze(0) < 0) | (
                key_pos.unsqueeze(0) >= lengths.view(-1, 1, 1))  # (N, nC, W)
            bias_index = position_bias.index(
                torch.arange(chunk_size, device=device),
                torch.arange(window, device=device) - left_context)
            window_index = key_pos.clamp(0, num_frames - 1).reshape(-1)
            return AttentionLayout(mask[:, :, None, None, :], bias_index, chunk_size,
                                   left_context, window_index)
        mask = key_padding.unsqueeze(1)  # (N, 1, T)
        chunk_mask = chunk_attention_mask(num_frames, chunk_size, left_context, device)
        if chunk_mask is not None:
            mask = mask | chunk_mask.unsqueeze(0)
        return AttentionLayout(mask.unsqueeze(1), position_bias.index(positions, positions))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
           mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias, masked) v.

    q: (..., Tq, d), k and v: (..., Tk, d); bias broadcastable to (..., Tq, Tk); mask bool,
    broadcastable, True = masked. Masked scores get the dtype's lowest value, not -inf, so a
    query with no visible key (padding) gives a finite average instead of NaN. The bias and
    the mask are applied in place on the scores: no (N, H, T, T) mask is materialised.
    """
    scores = torch.matmul(q * (q.shape[-1] ** -0.5), k.transpose(-1, -2))
    scores = scores.add_(bias).masked_fill_(mask, torch.finfo(scores.dtype).min)
    return torch.matmul(scores.softmax(dim=-1), v)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a learned relative-position bias and fused Q, K, V
    projections (``qkv``: rows [query; key; value]). Checkpoints of the earlier layout
    (``query`` and ``key_value``) are mapped on load."""

    def __init__(self, d_model: int, num_heads: int, max_distance: int) -> None:
        super().__init__()
        assert d_model % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.position_bias = RelativePositionBias(num_heads, max_distance)
        self._register_load_state_dict_pre_hook(_fuse_old_qkv)

    def forward(self, x: torch.Tensor, layout: AttentionLayout) -> torch.Tensor:
        """Whole utterances: x (N, T, D) -> (N, T, D)."""
        n, t, d = x.shape
        h, hd = self.num_heads, self.head_dim
        qkv = self.qkv(x)  # (N, T, 3D)
        bias = self.position_bias.table[:, layout.bias_index]
        c, left = layout.chunk_size, layout.left_context
        if c == 0:
            q, k, v = qkv.view(n, t, 3, h, hd).permute(2, 0, 3, 1, 4)  # (N, H, T, hd) each
            out = attend(q, k, v, bias, layout.mask).transpose(1, 2)  # (N, T, H, hd)
        else:
            num_chunks = layout.mask.shape[1]
            padded = num_chunks * c
            window = c + left
            q = nn.functional.pad(qkv[:, :, :d], (0, 0, 0, padded - t))  # (N, nC*C, D)
            q = q.view(n, num_chunks, c, h, hd).transpose(2, 3)  # (N, nC, H, C, hd)
            # Each chunk's window of keys and values: (N, nC * W, 2D) -> (N, nC, H, W, hd)
            windows = qkv[:, :, d:].index_select(1, layout.window_index)
            k, v = windows.view(n, num_chunks, window, 2, h, hd).permute(3, 0, 1, 4, 2, 5)
            out = attend(q, k, v, bias, layout.mask)  # (N, nC, H, C, hd)
            out = out.transpose(2, 3).reshape(n, padded, h, hd)[:, :t]
        return self.out(out.reshape(n, t, d))

    def streaming_forward(self, x: torch.Tensor, cache: torch.Tensor, bias_index: torch.Tensor,
                          mask: torch.Tensor) -> torch.Tensor:
        """One chunk: x (N, C, D) layer inputs of the chunk, cache (N, L, D) those of the L
        frames before it; bias_index (C, L + C); mask (N, 1, 1, L + C) True = masked.
        -> (N, C, D). Only the chunk's queries are projected."""
        n, c, d = x.shape
        h, hd = self.num_heads, self.head_dim
        keys = torch.cat([cache, x], dim=1)
        q = nn.functional.linear(x, self.qkv.weight[:d], self.qkv.bias[:d])
        kv = nn.functional.linear(keys, self.qkv.weight[d:], self.qkv.bias[d:])
        q = q.view(n, c, h, hd).transpose(1, 2)
        k, v = kv.view(n, keys.shape[1], 2, h, hd).permute(2, 0, 3, 1, 4)
        bias = self.position_bias.table[:, bias_index]
        out = attend(q, k, v, bias, mask).transpose(1, 2)
        return self.out(out.reshape(n, c, d))


def _fuse_old_qkv(state_dict, prefix, *args) -> None:
    """Load hook: ``query`` (D, D) and ``key_value`` (2D, D) of checkpoints written before
    the fused projection -> ``qkv`` (3D, D), rows [query; key; value] as before."""
    for suffix in ("weight", "bias"):
        old_q, old_kv = f"{prefix}query.{suffix}", f"{prefix}key_value.{suffix}"
        if old_q in state_dict and old_kv in state_dict:
            state_dict[f"{prefix}qkv.{suffix}"] = torch.cat(
                [state_dict.pop(old_q), state_dict.pop(old_kv)], dim=0)


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, depthwise conv, LayerNorm, SiLU, pointwise.

    ``mode`` (:attr:`EncoderConfig.conv_mode`): "centred" (kernel over [t-R, t+R], R =
    (K-1)//2; the teacher), "causal" (over [t-(K-1), t]) or "chunk" (centred, frames at or
    after the end of t's chunk read as zeros; centred when there are no chunks). One
    ``depthwise`` weight in every mode, so a checkpoint loads into either streaming mode.
    """

    def __init__(self, d_model: int, kernel_size: int, mode: str) -> None:
        super().__init__()
        assert kernel_size % 2 == 1
        assert mode in ("centred", "causal", "chunk"), mode
        self.mode = mode
        self.kernel_size = kernel_size
        self.reach = (kernel_size - 1) // 2
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: Optional[torch.Tensor],
        cache: Optional[torch.Tensor] = None,
        future_keep: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (N, T, D); pad_mask: (N, T) True at padding; cache: (N, D, K-1) of the previous
        depthwise inputs (streaming: x is one chunk); future_keep: (R, T) from
        :func:`chunk_conv_future_keep` (whole utterances in chunk mode; None = no chunks).
        Returns (N, T, D) and the new cache."""
        x = nn.functional.glu(self.pointwise_in(x), dim=-1)
        if pad_mask is not None:
            x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        x = x.transpose(1, 2)  # (N, D, T)
        new_cache = None
        if cache is not None:
            history = torch.cat([cache, x], dim=2)
            new_cache = history[:, :, history.shape[2] - (self.kernel_size - 1) :]
            if self.mode == "chunk":
                # The last R past frames, the chunk, and zeros for the look-ahead past its end.
                x = nn.functional.pad(history[:, :, cache.shape[2] - self.reach :],
                                      (0, self.reach))
            else:
                x = history
            x = self.depthwise(x)
        elif self.mode == "causal":
            x = self.depthwise(nn.functional.pad(x, (self.kernel_size - 1, 0)))
        elif self.mode == "chunk" and future_keep is not None:
            x = self.chunk_depthwise(x, future_keep)
        else:
            x = self.depthwise(nn.functional.pad(x, (self.reach, self.reach)))
        x = self.pointwise_out(nn.functional.silu(self.norm(x.transpose(1, 2))))
        return x, new_cache

    def chunk_depthwise(self, x: torch.Tensor, future_keep: torch.Tensor) -> torch.Tensor:
        """The centred depthwise convolution with look-ahead tap j (1..R) of frame t weighted
        by future_keep[j-1, t] (0 where t + j is past t's chunk). x: (N, D, T) -> (N, D, T).

        Taps -R..0 are one convolution; the R look-ahead taps are added one by one, each a
        shifted copy times its mask (R = 7 for K = 15: cheaper in memory than unfolding the
        chunks with their left context)."""
        num_frames = x.shape[2]
        weight = self.depthwise.weight  # (D, 1, K); tap k reads frame t + k - R
        out = nn.functional.conv1d(nn.functional.pad(x, (self.reach, 0)),
                                   weight[:, :, : self.reach + 1], self.depthwise.bias,
                                   groups=weight.shape[0])
        ahead = nn.functional.pad(x, (0, self.reach))
        keep = future_keep.to(x.dtype)
        for j in range(1, self.reach + 1):
            out = out + weight[:, :, self.reach + j] * (ahead[:, :, j : j + num_frames] * keep[j - 1])
        return out


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


class Dropout(nn.Dropout):
    """nn.Dropout with the mask drawn as uniform >= p: the same Bernoulli(1 - p) keep
    mask, but CPU ``bernoulli_`` took 6% of a training step and ``rand_like`` a tenth of
    that (the random stream differs from nn.Dropout's, not its distribution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))


class ConformerLayer(nn.Module):
    """Macaron layer: x + FF/2, x + MHSA, x + Conv, x + FF/2, LayerNorm."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ff1 = FeedForward(d, config.ff_dim)
        self.attn_norm = nn.LayerNorm(d)
        self.attn = SelfAttention(d, config.num_heads, config.max_relative_distance)
        self.conv_norm = nn.LayerNorm(d)
        self.conv = ConvolutionModule(d, config.conv_kernel, config.conv_mode)
        self.ff2 = FeedForward(d, config.ff_dim)
        self.final_norm = nn.LayerNorm(d)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: torch.Tensor, layout: AttentionLayout,
                pad_mask: Optional[torch.Tensor],
                conv_future_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Whole utterances: x (N, T, D), pad_mask (N, T) True at padding, conv_future_keep
        (R, T) the chunk convolution's look-ahead weights or None -> (N, T, D)."""
        x = x + 0.5 * self.dropout(self.ff1(x))
        x = x + self.dropout(self.attn(self.attn_norm(x), layout))
        conv_out, _ = self.conv(self.conv_norm(x), pad_mask, future_keep=conv_future_keep)
        x = x + self.dropout(conv_out)
        x = x + 0.5 * self.dropout(self.ff2(x))
        return self.final_norm(x)

    def streaming_forward(
        self, x: torch.Tensor, pad_mask: torch.Tensor, attn_cache: torch.Tensor,
        bias_index: torch.Tensor, attn_mask: torch.Tensor, conv_cache: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One chunk: x (N, C, D), pad_mask (N, C); attn_cache (N, L, D) attention inputs of
        the L frames before the chunk; bias_index (C, L + C); attn_mask (N, 1, 1, L + C)
        True where a key is not valid; conv_cache (N, D, K-1).
        Returns x and the new attention and convolution caches."""
        x = x + 0.5 * self.dropout(self.ff1(x))
        attn_in = self.attn_norm(x)
        x = x + self.dropout(self.attn.streaming_forward(attn_in, attn_cache, bias_index,
                                                         attn_mask))
        conv_out, new_conv_cache = self.conv(self.conv_norm(x), pad_mask, conv_cache)
        x = x + self.dropout(conv_out)
        x = x + 0.5 * self.dropout(self.ff2(x))
        x = self.final_norm(x)
        left = attn_cache.shape[1]
        keys = torch.cat([attn_cache, attn_in], dim=1)
        new_attn_cache = keys[:, keys.shape[1] - left :] if left > 0 else attn_cache
        return x, new_attn_cache, new_conv_cache


@dataclass
class StreamingState:
    """What crosses a chunk boundary, for a batch of N streams.

    attn_cache: (num_layers, N, L, D) attention inputs of the last L frames;
    conv_cache: (num_layers, N, D, K-1) depthwise-convolution inputs of the last K-1 frames
    (the same in both streaming modes; ``chunk`` reads the last (K-1)//2);
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
        pad_mask = torch.arange(num_frames, device=x.device).unsqueeze(0) >= lengths.unsqueeze(1)
        layout = AttentionLayout.build(lengths, num_frames, chunk_size, left_context,
                                       self.layers[0].attn.position_bias)
        conv_future_keep = None
        if self.config.conv_mode == "chunk":  # built once per batch, like the layout
            conv_future_keep = chunk_conv_future_keep(
                num_frames, chunk_size, (self.config.conv_kernel - 1) // 2, x.device, x.dtype)
        layer_outputs = []
        for layer in self.layers:
            x = layer(x, layout, pad_mask, conv_future_keep)
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
        attn_mask = torch.cat([cache_mask, pad_mask], dim=1)[:, None, None, :]  # (N,1,1,L+C)
        bias_index = self.layers[0].attn.position_bias.index(
            positions, torch.cat([cache_positions, positions]))
        new_attn, new_conv = [], []
        for i, layer in enumerate(self.layers):
            x, attn_cache, conv_cache = layer.streaming_forward(
                x, pad_mask, state.attn_cache[i], bias_index, attn_mask, state.conv_cache[i])
            new_attn.append(attn_cache)
            new_conv.append(conv_cache)
        new_state = StreamingState(
            attn_cache=torch.stack(new_attn),
            conv_cache=torch.stack(new_conv),
            processed_frames=start + lengths,
        )
        return x, lengths, new_state
