"""Zipformer attention: one set of attention weights per layer, shared by the non-linear
attention module and both self-attention (value) modules of that layer (the paper's
section 3.3: the weights are computed once, the three modules only bring their values).

Shapes: N batch, H heads, Tq query frames, Tk key frames, D channels; qd, vd, pd the query,
value and positional-query dimensions per head. Masks are bool, True = masked.

Streaming: each module caches what it projected from the L frames before the chunk (keys
for the weights, values for the value modules, the gated values of the non-linear
attention), so a chunk projects only its own frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import nn

from icefall_kd.model.zipformer.modules import relative_position_features


def _with_cache(x: torch.Tensor, cache: Optional[torch.Tensor]
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """x: (N, C, E) the chunk's projections, cache: (N, L, E) those of the L frames before
    -> ((N, L + C, E), the new (N, L, E) cache: the last L frames); (x, None) without one."""
    if cache is None:
        return x, None
    left = cache.shape[1]
    full = torch.cat([cache, x], dim=1)
    return full, full[:, full.shape[1] - left :]


@dataclass
class ChunkBlocks:
    """Chunked attention over a whole utterance computed chunk by chunk: the queries of
    chunk c (``chunk`` frames) attend only to the window of ``left`` + ``chunk`` frames
    [c chunk - left, (c + 1) chunk), so the (T, T) score matrix with all but that band
    masked (what ``chunk_attention_mask`` describes) is replaced by (chunks, chunk, window)
    blocks. ``key_mask``: (N, 1, chunks, 1, window) True where a window slot is before the
    utterance, past its end, or padding. Used in training and simulated streaming when the
    window is shorter than the utterance; the numbers are those of the masked matrix."""

    chunk: int
    left: int
    frames: int
    key_mask: torch.Tensor

    @classmethod
    def build(cls, pad: torch.Tensor, chunk: int, left: int) -> "ChunkBlocks":
        """pad: (N, T) True at padding frames."""
        t = pad.shape[1]
        num_chunks = -(-t // chunk)
        slot = (torch.arange(num_chunks, device=pad.device).unsqueeze(1) * chunk - left
                + torch.arange(left + chunk, device=pad.device))  # (chunks, window) frame
        outside = (slot < 0) | (slot >= t)
        padding = pad[:, slot.clamp(0, t - 1)]  # (N, chunks, window)
        return cls(chunk, left, t, (outside | padding)[:, None, :, None, :])

    @property
    def num_chunks(self) -> int:
        return -(-self.frames // self.chunk)

    @property
    def window(self) -> int:
        return self.left + self.chunk

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """(A, B, T, E) -> (A, B, chunks, chunk, E), zero frames appended to whole chunks
        (A, B: N and H in either order)."""
        n, h, _, e = x.shape
        x = nn.functional.pad(x, (0, 0, 0, self.num_chunks * self.chunk - self.frames))
        return x.reshape(n, h, self.num_chunks, self.chunk, e)

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, T, E) keys or values -> (N, H, chunks, window, E): each chunk's window."""
        x = nn.functional.pad(x, (0, 0, self.left,
                                  self.num_chunks * self.chunk - self.frames))
        return x.unfold(2, self.window, self.chunk).transpose(-1, -2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, chunks, chunk, E) -> (N, H, T, E)."""
        n, h, _, _, e = x.shape
        return x.reshape(n, h, self.num_chunks * self.chunk, e)[:, :, : self.frames]


@dataclass
class BlockedWeights:
    """Attention weights (N, H, chunks, chunk, window) of :class:`ChunkBlocks`."""

    weights: torch.Tensor
    blocks: ChunkBlocks


Weights = Union[torch.Tensor, BlockedWeights]


def attend(weights: Weights, values: torch.Tensor) -> torch.Tensor:
    """Weighted averages of values (N, H', Tk, E) -> (N, H', Tq, E) (H' = H, or 1 for
    :func:`first_head`)."""
    if isinstance(weights, BlockedWeights):
        blocks = weights.blocks
        return blocks.merge(torch.matmul(weights.weights, blocks.windows(values)))
    return torch.matmul(weights, values)


def first_head(weights: Weights) -> Weights:
    """The first head's weights, head dimension kept: (N, 1, ...)."""
    if isinstance(weights, BlockedWeights):
        return BlockedWeights(weights.weights[:, :1], weights.blocks)
    return weights[:, :1]


def scores_by_key(pos_scores: torch.Tensor, tk: int) -> torch.Tensor:
    """(N, H, Tq, Tq + Tk - 1) scores of the distances -(Tk - 1) .. Tq - 1 -> (N, H, Tq, Tk)
    scores of the keys: query i (the last Tq of Tk frames) and key j are at distance
    j - i - (Tk - Tq), column j + Tq - 1 - i, so row i is a contiguous slice starting at
    Tq - 1 - i. A strided view in eager mode (any layout whose last dimension is
    contiguous): its backward is a copy, where gather's is a scatter-add that took half of
    a training step on a CPU. ONNX has no strided view, so the exporter traces the same
    selection as a gather."""
    if torch.jit.is_tracing():
        return gather_scores_by_key(pos_scores, tk)
    if pos_scores.stride(-1) != 1:
        pos_scores = pos_scores.contiguous()
    n, h, tq, _ = pos_scores.shape
    stride_n, stride_h, stride_q, _ = pos_scores.stride()
    # Entry (i, j) is column j + Tq - 1 - i of row i: i (stride_q - 1) + j past the start.
    return pos_scores.as_strided((n, h, tq, tk), (stride_n, stride_h, stride_q - 1, 1),
                                 pos_scores.storage_offset() + tq - 1)


def gather_scores_by_key(pos_scores: torch.Tensor, tk: int) -> torch.Tensor:
    """:func:`scores_by_key` as a gather (what ONNX export traces)."""
    n, h, tq, _ = pos_scores.shape
    index = (torch.arange(tk, device=pos_scores.device).unsqueeze(0)
             - torch.arange(tq, device=pos_scores.device).unsqueeze(1) + (tq - 1))
    return pos_scores.gather(-1, index.expand(n, h, tq, tk))


class AttentionWeights(nn.Module):
    """softmax(q k / sqrt(qd) + p . pos(key - query)) per head, with a relative-position
    term: the position features of each distance are projected to pd per head and scored
    against a separate positional query p (icefall's layout, pos_head_dim = 4)."""

    def __init__(self, dim: int, num_heads: int, query_head_dim: int, pos_head_dim: int,
                 pos_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query_head_dim = query_head_dim
        self.pos_head_dim = pos_head_dim
        self.pos_dim = pos_dim
        self.key_dim = num_heads * query_head_dim
        self.in_proj = nn.Linear(dim, num_heads * (2 * query_head_dim + pos_head_dim))
        self.pos_proj = nn.Linear(pos_dim, num_heads * pos_head_dim, bias=False)

    def forward(self, x: torch.Tensor, mask: Union[torch.Tensor, ChunkBlocks],
                cached_key: Optional[torch.Tensor] = None
                ) -> Tuple[Weights, Optional[torch.Tensor]]:
        """x: (N, Tq, D). Whole utterances (``cached_key`` None): keys are the queries'
        frames, mask broadcastable to (N, 1, Tq, Tq), or :class:`ChunkBlocks` (weights then
        :class:`BlockedWeights`). Streaming: x is one chunk, cached_key (N, L, H qd) the
        keys of the L frames before it, mask broadcastable to (N, 1, Tq, L + Tq). Returns
        weights (N, H, Tq, Tk) and the new key cache."""
        n, tq, _ = x.shape
        h, qd, pd = self.num_heads, self.query_head_dim, self.pos_head_dim
        proj = self.in_proj(x)
        q, k, p = proj.split([self.key_dim, self.key_dim, h * pd], dim=-1)
        k, new_cache = _with_cache(k, cached_key)
        tk = k.shape[1]
        q = q.view(n, tq, h, qd).transpose(1, 2)
        k = k.view(n, tk, h, qd).transpose(1, 2)
        blocks = mask if isinstance(mask, ChunkBlocks) else None
        if blocks is not None:  # (N, H, chunks, chunk, qd) against (N, H, chunks, window, qd)
            q, k = blocks.queries(q), blocks.windows(k)
            tq, tk = blocks.chunk, blocks.window
        scores = torch.matmul(q * qd**-0.5, k.transpose(-1, -2))  # (N, H, [chunks,] Tq, Tk)
        # Queries are the last Tq of the Tk key frames: key j - query i = j - i - (Tk - Tq)
        # (in a block: the window ends with the chunk). Only distances occur, so
        # chunk-relative frame numbers are enough.
        distances = torch.arange(-(tk - 1), tq, device=x.device)  # (R,) = (Tq + Tk - 1,)
        pos = self.pos_proj(relative_position_features(distances, self.pos_dim).to(x.dtype))
        pos = pos.view(-1, h, pd).permute(1, 2, 0)  # (H, pd, R)
        # One matmul per head over all queries, (H, N Tq, pd) @ (H, pd, R), rather than a
        # broadcast over N, which copies pos N times and sums N gradients in the backward.
        p = p.reshape(n, -1, h, pd).permute(2, 0, 1, 3)  # (H, N, T, pd)
        if blocks is not None:
            p = blocks.queries(p)  # (H, N, chunks, chunk, pd)
        r = pos.shape[-1]
        pos_scores = torch.matmul(p.reshape(h, -1, pd), pos).view(h, -1, tq, r)
        pos_scores = scores_by_key(pos_scores, tk)  # (H, N [chunks], Tq, Tk), a view
        pos_scores = pos_scores.view(h, *scores.shape[:1], *scores.shape[2:]).transpose(0, 1)
        # In place: the matmul's backward needs its inputs, not its output, and every
        # score-sized tensor spared is a large allocation spared.
        scores = scores.add_(pos_scores)
        scores = scores.masked_fill_(blocks.key_mask if blocks is not None else mask,
                                     torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1)
        return (BlockedWeights(weights, blocks) if blocks is not None else weights), new_cache


class AttentionValues(nn.Module):
    """The value half of self-attention: project values (vd per head), average them with
    the layer's shared weights, project back. (N, Tq, D) -> (N, Tq, D)."""

    def __init__(self, dim: int, num_heads: int, value_head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.value_head_dim = value_head_dim
        self.in_proj = nn.Linear(dim, num_heads * value_head_dim)
        self.out_proj = nn.Linear(num_heads * value_head_dim, dim)

    def forward(self, x: torch.Tensor, weights: Weights,
                cache: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """weights: (N, H, Tq, Tk) or blocked; cache (streaming): (N, L, H vd) values of the
        frames before the chunk. Returns (N, Tq, D) and the new cache."""
        n, tq, _ = x.shape
        v, new_cache = _with_cache(self.in_proj(x), cache)
        v = v.view(n, v.shape[1], self.num_heads, self.value_head_dim).transpose(1, 2)
        out = attend(weights, v).transpose(1, 2).reshape(n, tq, -1)
        return self.out_proj(out), new_cache


class NonlinearAttention(nn.Module):
    """The paper's non-linear attention (NLA): from x project s, v, y (3D/4 each);
    out = (A (tanh(s) * v)) * y with A the first head's shared weights; project back.
    The multiplications make it a quadratic function of the input, which plain attention
    is not. (N, Tq, D) -> (N, Tq, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.hidden_dim = 3 * dim // 4
        self.in_proj = nn.Linear(dim, 3 * self.hidden_dim)
        self.out_proj = nn.Linear(self.hidden_dim, dim)

    def forward(self, x: torch.Tensor, weights: Weights,
                cache: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """weights: (N, H, Tq, Tk) or blocked (head 0 is used); cache (streaming):
        (N, L, 3D/4) the gated values tanh(s) * v of the frames before the chunk."""
        s, v, y = self.in_proj(x).chunk(3, dim=-1)
        v, new_cache = _with_cache(torch.tanh(s) * v, cache)
        out = attend(first_head(weights), v.unsqueeze(1)).squeeze(1) * y  # (N, Tq, 3D/4)
        return self.out_proj(out), new_cache
