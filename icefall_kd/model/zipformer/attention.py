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

from typing import Optional, Tuple

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

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                cached_key: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (N, Tq, D). Whole utterances (``cached_key`` None): keys are the queries'
        frames, mask broadcastable to (N, 1, Tq, Tq). Streaming: x is one chunk,
        cached_key (N, L, H qd) the keys of the L frames before it, mask broadcastable to
        (N, 1, Tq, L + Tq). Returns weights (N, H, Tq, Tk) and the new key cache."""
        n, tq, _ = x.shape
        h, qd, pd = self.num_heads, self.query_head_dim, self.pos_head_dim
        proj = self.in_proj(x)
        q, k, p = proj.split([self.key_dim, self.key_dim, h * pd], dim=-1)
        k, new_cache = _with_cache(k, cached_key)
        tk = k.shape[1]
        q = q.view(n, tq, h, qd).transpose(1, 2)
        k = k.view(n, tk, h, qd).transpose(1, 2)
        scores = torch.matmul(q * qd**-0.5, k.transpose(-1, -2))  # (N, H, Tq, Tk)
        # Queries are the last Tq of the Tk key frames: key j - query i = j - i - (Tk - Tq).
        # Only distances occur, so chunk-relative frame numbers are enough.
        distances = torch.arange(-(tk - 1), tq, device=x.device)  # (R,) = (Tq + Tk - 1,)
        pos = self.pos_proj(relative_position_features(distances, self.pos_dim).to(x.dtype))
        pos = pos.view(-1, h, pd).permute(1, 2, 0)  # (H, pd, R)
        # One matmul per head over all N Tq queries, (H, N Tq, pd) @ (H, pd, R), rather than
        # a broadcast over N, which copies pos N times and sums N gradients in the backward.
        p = p.reshape(n * tq, h, pd).transpose(0, 1)
        pos_scores = torch.matmul(p, pos).view(h, n, tq, -1).transpose(0, 1)  # (N, H, Tq, R)
        # In place: the matmul's backward needs its inputs, not its output, and every
        # (N, H, Tq, Tk) tensor spared is a large allocation spared.
        scores = scores.add_(scores_by_key(pos_scores, tk))
        scores = scores.masked_fill_(mask, torch.finfo(scores.dtype).min)
        return scores.softmax(dim=-1), new_cache


class AttentionValues(nn.Module):
    """The value half of self-attention: project values (vd per head), average them with
    the layer's shared weights, project back. (N, Tq, D) -> (N, Tq, D)."""

    def __init__(self, dim: int, num_heads: int, value_head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.value_head_dim = value_head_dim
        self.in_proj = nn.Linear(dim, num_heads * value_head_dim)
        self.out_proj = nn.Linear(num_heads * value_head_dim, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                cache: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """weights: (N, H, Tq, Tk); cache (streaming): (N, L, H vd) values of the frames
        before the chunk. Returns (N, Tq, D) and the new cache."""
        n, tq, _ = x.shape
        v, new_cache = _with_cache(self.in_proj(x), cache)
        v = v.view(n, v.shape[1], self.num_heads, self.value_head_dim).transpose(1, 2)
        out = torch.matmul(weights, v).transpose(1, 2).reshape(n, tq, -1)
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

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                cache: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """weights: (N, H, Tq, Tk) (head 0 is used); cache (streaming): (N, L, 3D/4) the
        gated values tanh(s) * v of the frames before the chunk."""
        s, v, y = self.in_proj(x).chunk(3, dim=-1)
        v, new_cache = _with_cache(torch.tanh(s) * v, cache)
        out = torch.matmul(weights[:, 0], v) * y  # (N, Tq, 3D/4)
        return self.out_proj(out), new_cache
