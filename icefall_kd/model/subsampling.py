"""4x convolutional subsampling of 80-dim fbank frames (icefall's Conv2dSubsampling)."""

from __future__ import annotations

import torch
from torch import nn

# Feature frames the subsampling needs beyond those a chunk covers: an output frame t reads
# input frames 4t .. 4t+6, so C output frames need 4C + 3 input frames.
SUBSAMPLING_LOOKAHEAD_FRAMES = 3
SUBSAMPLING_FACTOR = 4


def frames_after_subsampling(num_frames: int) -> int:
    """Encoder frames after the 4x Conv2dSubsampling of icefall's (and sherpa-onnx's) streaming
    Conformer, two 3x3 convolutions with stride 2: ``((T - 1) // 2 - 1) // 2``."""
    return ((num_frames - 1) // 2 - 1) // 2


def to_channels_last_image(x: torch.Tensor) -> torch.Tensor:
    """(N, T, F) features -> (N, 1, T, F) stored channels-last (N, T, F, C in memory), the
    layout oneDNN's convolutions and their backward run natively in, with no layout copies.
    clone(memory_format=...), not contiguous(): with one channel a tensor counts as
    contiguous in both formats and would keep NCHW strides, making oneDNN pick NCHW."""
    return x.unsqueeze(1).clone(memory_format=torch.channels_last)


def conv2d_channels_last(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv`` on a channels-last input, its weight channels-last too (or the backward
    copies the input to NCHW)."""
    weight = conv.weight.clone(memory_format=torch.channels_last)
    return nn.functional.conv2d(x, weight, conv.bias, conv.stride, conv.padding)


def linear_over_channels_last(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, F) channels-last -> (N, T, out): ``linear`` over each frame's (channel,
    freq) pairs in channel-major order (the parameter's layout), with its weight reordered to
    (freq, channel), the order in memory, instead of copying the activation."""
    n, c, t, f = x.shape
    weight = linear.weight.view(-1, c, f).transpose(1, 2).reshape(-1, f * c)
    return nn.functional.linear(x.permute(0, 2, 3, 1).reshape(n, t, f * c), weight, linear.bias)


class Conv2dSubsampling(nn.Module):
    """(N, T, F) features -> (N, ((T-1)//2-1)//2, d_model).

    Two 3x3 convolutions with stride 2, no padding: every output frame depends on a fixed
    window of 7 input frames, so running it chunk by chunk on overlapping windows gives
    exactly the frames of a whole-utterance pass (no state to carry).
    """

    def __init__(self, feature_dim: int, d_model: int, channels: int = 32) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2),
            nn.ReLU(),
        )
        freq = ((feature_dim - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * freq, d_model)
        # Global mean and variance normalisation of the features (per mel bin), set from
        # training data before training; a fixed per-frame affine map, so streaming-safe.
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_inv_std", torch.ones(feature_dim))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_inv_std.copy_(1.0 / std.clamp(min=1e-3))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor):
        """x: (N, T, F); x_lens: (N,) -> ((N, T', d_model), (N,) lengths)."""
        x = (x - self.feature_mean) * self.feature_inv_std
        # ReLU in place. (self.conv keeps the checkpoints' parameter names; its ReLU modules
        # hold no state.)
        x = to_channels_last_image(x)
        for conv in (self.conv[0], self.conv[2]):
            x = torch.relu_(conv2d_channels_last(conv, x))
        x = linear_over_channels_last(self.out, x)
        return x, frames_after_subsampling(x_lens)
