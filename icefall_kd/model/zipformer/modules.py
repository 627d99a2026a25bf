"""The Zipformer's building blocks that hold no attention: activations, BiasNorm, bypass,
feed-forward and convolution modules, channel conversion and the down/upsampling between
frame rates.

Shapes: N batch, T frames (at the module's own rate), D channels.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn


class _Swoosh(torch.autograd.Function):
    """softplus(x - shift) - 0.08 x - offset in two passes forward and three backward,
    saving only x. Autograd over the formula keeps four intermediates and runs twice as
    many passes over memory; on the front end's 50 Hz feature maps that cost more than the
    convolutions around them."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, shift: float, offset: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.shift = shift
        return nn.functional.softplus(x - shift).add_(x, alpha=-0.08).sub_(offset)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        # d/dx = sigmoid(x - shift) - 0.08
        return torch.sigmoid(x - ctx.shift).sub_(0.08).mul_(grad), None, None


def swoosh(x: torch.Tensor, shift: float, offset: float) -> torch.Tensor:
    """softplus(x - shift) - 0.08 x - offset. ONNX export traces the plain formula."""
    if torch.jit.is_tracing() or not torch.is_grad_enabled() or not x.requires_grad:
        return nn.functional.softplus(x - shift) - 0.08 * x - offset
    return _Swoosh.apply(x, shift, offset)


class SwooshR(nn.Module):
    """SwooshR(x) = log(1 + exp(x - 1)) - 0.08 x - 0.313261687 (zero at x = 0; the paper's
    eq. 5). Used after convolutions, where a non-zero slope for negative inputs keeps
    gradients flowing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh(x, 1.0, 0.313261687)


class SwooshL(nn.Module):
    """SwooshL(x) = log(1 + exp(x - 4)) - 0.08 x - 0.035 (the paper's eq. 5): a shifted
    Swoosh for the feed-forward modules, whose large hidden layers want sparser outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh(x, 4.0, 0.035)


class BiasNorm(nn.Module):
    """x / RMS(x - b) * exp(gamma): LayerNorm without mean subtraction, with a learned
    channel bias b inside the RMS and one learned log-scale (the paper's eq. 4). Keeps the
    length of the vector as information the next layers can use. (..., D) -> (..., D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = (x - self.bias).pow(2).mean(dim=-1, keepdim=True).add(1e-8).rsqrt()
        return x * rms * self.log_scale.exp()


class Bypass(nn.Module):
    """Learned per-channel mix of a module's input and output: orig + c (x - orig), c
    clamped to [``scale_min``, 1]. The floor keeps every layer contributing (icefall starts
    it higher and lowers it during training; a fixed floor keeps train and eval alike)."""

    def __init__(self, dim: int, scale_min: float = 0.2) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), 0.5))
        self.scale_min = scale_min

    def forward(self, orig: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """orig, x: (N, T, D) -> (N, T, D)."""
        return orig + (x - orig) * self.scale.clamp(self.scale_min, 1.0)


class FeedForward(nn.Module):
    """Linear, SwooshL, linear. (N, T, D) -> (N, T, D). Dropout sits on the residual branch
    (the layer), as in the Conformer of this project: cheaper on a CPU than on the wide
    hidden layer."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, hidden_dim)
        self.activation = SwooshL()
        self.out_proj = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.activation(self.in_proj(x)))


class ConvolutionModule(nn.Module):
    """Pointwise conv with a sigmoid gate, depthwise conv, SwooshR, pointwise conv.

    The depthwise weight has K taps (K odd, R = K // 2) in both modes, so a streaming model
    can start from a full-context one: ``causal=False`` reads frames [t - R, t + R];
    ``causal=True`` reads [t - R, t] with taps 0..R only (the past half of the kernel and
    the frame itself) and carries the last R depthwise inputs as its cache, the
    (N, D, kernel // 2) state of sherpa-onnx's ``zipformer2`` contract.
    """

    def __init__(self, dim: int, kernel_size: int, causal: bool) -> None:
        super().__init__()
        assert kernel_size % 2 == 1, kernel_size
        self.causal = causal
        self.reach = kernel_size // 2
        self.in_proj = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, groups=dim)
        self.activation = SwooshR()
        self.out_proj = nn.Linear(dim, dim)

    def _weight(self) -> torch.Tensor:
        w = self.depthwise.weight  # (D, 1, K); tap k reads frame t + k - R
        return w[:, :, : self.reach + 1] if self.causal else w

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor],
                cache: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (N, T, D); pad_mask: (N, T) True at padding (zeroed before the depthwise conv,
        so padding never reaches a real frame); cache (streaming, causal only): (N, D, R) the
        depthwise inputs of the R frames before x. Returns (N, T, D) and the new cache."""
        value, gate = self.in_proj(x).chunk(2, dim=-1)
        x = value * torch.sigmoid(gate)
        if pad_mask is not None:
            x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        x = x.transpose(1, 2)  # (N, D, T)
        new_cache = None
        if cache is not None:
            x = torch.cat([cache, x], dim=2)
            new_cache = x[:, :, x.shape[2] - self.reach :]
        elif self.causal:
            x = nn.functional.pad(x, (self.reach, 0))
        else:
            x = nn.functional.pad(x, (self.reach, self.reach))
        x = nn.functional.conv1d(x, self._weight(), self.depthwise.bias, groups=x.shape[1])
        return self.out_proj(self.activation(x.transpose(1, 2))), new_cache


def convert_channels(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(N, T, D) -> (N, T, dim): the first ``dim`` channels, or zeros appended (how a
    Zipformer moves between stacks of different widths without parameters)."""
    have = x.shape[-1]
    if have >= dim:
        return x[..., :dim]
    return nn.functional.pad(x, (0, dim - have))


class Downsample(nn.Module):
    """Frame t of the output is a learned softmax-weighted average of input frames
    [f t, f t + f). (N, f T', D) -> (N, T', D); the caller pads T to a multiple of f (and
    zeros padding frames, so they add the same thing in every mode)."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.weights = nn.Parameter(torch.zeros(factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        f = self.factor
        if f == 1:
            return x
        assert t % f == 0, (t, f)
        return torch.einsum("ntfd,f->ntd", x.view(n, t // f, f, d), self.weights.softmax(0))


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Each frame repeated ``factor`` times: (N, T, D) -> (N, factor T, D)."""
    return x if factor == 1 else x.repeat_interleave(factor, dim=1)


def relative_position_features(distance: torch.Tensor, dim: int) -> torch.Tensor:
    """Features of integer relative distances (key - query), (...,) -> (..., dim).

    Distances are compressed logarithmically (sign(r) log(1 + |r|)) and encoded as sines
    and cosines of geometrically spaced frequencies: nearby distances are told apart
    finely, far ones coarsely, and any distance gets a bounded feature (the idea of
    icefall's CompactRelPositionalEncoding; this formula is ours).
    """
    r = distance.to(torch.float32)
    compressed = torch.sign(r) * torch.log1p(r.abs())
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=r.device, dtype=torch.float32)
                      * (-math.log(16.0) / max(half - 1, 1))) * 4.0  # 4 ... 1/4
    angles = compressed.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
