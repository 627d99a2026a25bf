"""One Zipformer layer (the paper's figure 1b): twice the Conformer's depth of modules
around one set of shared attention weights.

    orig = x;  A = attention weights(x)
    x += FF1(x);  x += NLA(x, A);  x += SA1(x, A);  x += Conv1(x);  x += FF2(x)
    x = bypass_mid(orig, x)
    x += SA2(x, A);  x += Conv2(x);  x += FF3(x)
    x = bypass(orig, BiasNorm(x))

Feed-forward hidden sizes are 3/4, 1 and 5/4 of the stack's ``feedforward_dim`` (icefall).
Shapes: N batch, T frames at the stack's rate, D the stack's width.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from icefall_kd.model.conformer import Dropout
from icefall_kd.model.zipformer.attention import (
    AttentionValues,
    AttentionWeights,
    NonlinearAttention,
)
from icefall_kd.model.zipformer.modules import BiasNorm, Bypass, ConvolutionModule, FeedForward

# Names of the six per-layer streaming caches, in sherpa-onnx's zipformer2 order.
LAYER_CACHE_NAMES = ("cached_key", "cached_nonlin_attn", "cached_val1", "cached_val2",
                     "cached_conv1", "cached_conv2")


class ZipformerLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int, feedforward_dim: int, conv_kernel: int,
                 query_head_dim: int, value_head_dim: int, pos_head_dim: int, pos_dim: int,
                 causal: bool, dropout: float) -> None:
        super().__init__()
        self.attn_weights = AttentionWeights(dim, num_heads, query_head_dim, pos_head_dim,
                                             pos_dim)
        self.ff1 = FeedForward(dim, feedforward_dim * 3 // 4)
        self.nonlin_attn = NonlinearAttention(dim)
        self.self_attn1 = AttentionValues(dim, num_heads, value_head_dim)
        self.conv1 = ConvolutionModule(dim, conv_kernel, causal)
        self.ff2 = FeedForward(dim, feedforward_dim)
        self.bypass_mid = Bypass(dim)
        self.self_attn2 = AttentionValues(dim, num_heads, value_head_dim)
        self.conv2 = ConvolutionModule(dim, conv_kernel, causal)
        self.ff3 = FeedForward(dim, feedforward_dim * 5 // 4)
        self.norm = BiasNorm(dim)
        self.bypass = Bypass(dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor,
                pad_mask: Optional[torch.Tensor],
                caches: Optional[List[torch.Tensor]] = None
                ) -> Tuple[torch.Tensor, Optional[List[torch.Tensor]]]:
        """x: (N, T, D); attn_mask broadcastable to (N, 1, T, Tk), True = masked (Tk = T,
        or L + T in streaming); pad_mask (N, T) True at padding frames.

        ``caches`` (streaming, x one chunk): the six tensors of :data:`LAYER_CACHE_NAMES`,
        batch first: key (N, L, H qd), nonlin (N, L, 3D/4), val1 and val2 (N, L, H vd),
        conv1 and conv2 (N, D, kernel // 2). Returns x and the new caches (None without)."""
        c = caches if caches is not None else [None] * len(LAYER_CACHE_NAMES)
        drop = self.dropout
        orig = x
        weights, key = self.attn_weights(x, attn_mask, c[0])
        x = x + drop(self.ff1(x))
        out, nonlin = self.nonlin_attn(x, weights, c[1])
        x = x + drop(out)
        out, val1 = self.self_attn1(x, weights, c[2])
        x = x + drop(out)
        out, conv1 = self.conv1(x, pad_mask, c[4])
        x = x + drop(out)
        x = x + drop(self.ff2(x))
        x = self.bypass_mid(orig, x)
        out, val2 = self.self_attn2(x, weights, c[3])
        x = x + drop(out)
        out, conv2 = self.conv2(x, pad_mask, c[5])
        x = x + drop(out)
        x = x + drop(self.ff3(x))
        x = self.bypass(orig, self.norm(x))
        new_caches = [key, nonlin, val1, val2, conv1, conv2] if caches is not None else None
        return x, new_caches

    def init_caches(self, batch_size: int, left: int, device=None,
                    dtype: torch.dtype = torch.float32) -> List[torch.Tensor]:
        """Zero caches of :data:`LAYER_CACHE_NAMES` for ``left`` frames of left context."""
        dim = self.norm.bias.shape[0]
        value_dim = self.self_attn1.in_proj.out_features

        def zeros(*shape):
            return torch.zeros(*shape, device=device, dtype=dtype)

        return [zeros(batch_size, left, self.attn_weights.key_dim),
                zeros(batch_size, left, self.nonlin_attn.hidden_dim),
                zeros(batch_size, left, value_dim), zeros(batch_size, left, value_dim),
                zeros(batch_size, dim, self.conv1.reach), zeros(batch_size, dim, self.conv2.reach)]
