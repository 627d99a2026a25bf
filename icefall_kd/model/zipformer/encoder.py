"""The Zipformer encoder: a 50 Hz front end, stacks at several frame rates, 25 Hz output.

    fbank (N, T_in, F) 100 Hz
      -> ZipformerEmbed: (N, T50, D_0), T50 = (T_in - 3) // 2 (frame j reads input frames
         2j .. 2j+4: 3 frames of look-ahead past a 4C-frame chunk, as the Conformer's)
      -> stack i: channels converted to D_i, downsampled by d_i, its layers, upsampled,
         bypassed with its input: (N, T50, D_i)
      -> the last stack's output, extended to max(D) with the extra channels of the
         latest wider stack (icefall's "full-dim output"), downsampled by 2 (learned pair
         weights): (N, T50 // 2, max(D)) at 25 Hz; T50 // 2 equals the Conformer's
         ((T_in - 1) // 2 - 1) // 2 (:func:`frames_after_subsampling`).

Hidden layers for distillation (``return_layers``): one per stack, layer i being what the
encoder would output if it ended after stack i (the same combination and output
downsampling over stacks 0..i, zero-padded to max(D)): all (N, T, max(D)) at 25 Hz, and the
last one is the encoder output, as the Conformer's last layer is.

Streaming (``causal=True``): chunk C (25 Hz frames) is 2C frames at 50 Hz and 2C / d_i in
stack i; a frame sees its own chunk and ``stack_left_context`` frames before it, per stack.
Padding frames are zeroed before each downsampling, masked out of attention and zeroed
before every depthwise convolution, so a whole-utterance pass with chunk masks ("simulated
streaming") and :meth:`ZipformerEncoder.streaming_forward` over carried caches compute the
same real frames.

Left out (the issue asks to say so): icefall's Balancer and Whiten activation constraints,
its ScaledAdam optimiser, the ConvNeXt layer of the front end (it reads 3 frames ahead at
50 Hz and would change the chunk window shared with the Conformer), feature masking of
channels, and the chunk-aware right half of the convolution. The trainer's AdamW and Eden
schedule are used as for the Conformer; none of the left-out parts has been measured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn

from icefall_kd.model.conformer import chunk_attention_mask
from icefall_kd.model.subsampling import (
    conv2d_channels_last,
    linear_over_channels_last,
    to_channels_last_image,
)
from icefall_kd.model.zipformer.attention import ChunkBlocks
from icefall_kd.model.zipformer.config import ZipformerConfig
from icefall_kd.model.zipformer.layer import LAYER_CACHE_NAMES, ZipformerLayer
from icefall_kd.model.zipformer.modules import (
    BiasNorm,
    Bypass,
    Downsample,
    SwooshR,
    convert_channels,
    upsample,
)


# Chunked attention with a finite left context computed block by block
# (:class:`ChunkBlocks`) where that is shorter than the utterance; False: the masked (T, T)
# matrix everywhere (the tests compare the two).
CHUNK_BLOCKS = True


class ZipformerEmbed(nn.Module):
    """(N, T, F) fbank -> ((N, (T - 3) // 2, dim), (N,) lengths) at 50 Hz.

    Global feature normalisation (set from training data, as the Conformer's), then
    convolutions 3x3 (frequency padded), 3x3 stride 2, and 1x3 stride 2 in frequency only,
    each followed by SwooshR; a linear layer and BiasNorm. No padding in time: every output
    frame reads a fixed window of 5 input frames, so chunks need no state.
    """

    def __init__(self, feature_dim: int, channels: Tuple[int, int, int], dim: int) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=(0, 1)), SwooshR(),
            nn.Conv2d(c1, c2, 3, stride=2), SwooshR(),
            nn.Conv2d(c2, c3, (1, 3), stride=(1, 2)), SwooshR(),
        )
        freq = ((feature_dim - 3) // 2 + 1 - 3) // 2 + 1
        self.out = nn.Linear(c3 * freq, dim)
        self.norm = BiasNorm(dim)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_inv_std", torch.ones(feature_dim))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_inv_std.copy_(1.0 / std.clamp(min=1e-3))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.feature_mean) * self.feature_inv_std
        # Channels-last, as the Conformer's front end (this front end at 50 Hz took a
        # quarter of a zipformer-small training step in NCHW).
        x = to_channels_last_image(x)
        for conv, activation in zip(self.conv[0::2], self.conv[1::2]):
            x = activation(conv2d_channels_last(conv, x))
        x = linear_over_channels_last(self.out, x)
        x = self.norm(x)
        return x, torch.div(x_lens - 3, 2, rounding_mode="floor").clamp(min=0)


class ZipformerStack(nn.Module):
    """Layers at 50 / ``factor`` Hz between a learned downsampling and a repeat
    upsampling, bypassed with the stack's 50 Hz input (for factor > 1)."""

    def __init__(self, config: ZipformerConfig, index: int) -> None:
        super().__init__()
        c, i = config, index
        self.factor = c.downsampling_factors[i]
        self.dim = c.encoder_dims[i]
        self.downsample = Downsample(self.factor)
        self.layers = nn.ModuleList(
            ZipformerLayer(c.encoder_dims[i], c.num_heads[i], c.feedforward_dims[i],
                           c.conv_kernels[i], c.query_head_dim, c.value_head_dim,
                           c.pos_head_dim, c.pos_dim, c.causal, c.dropout)
            for _ in range(c.layers_per_stack[i]))
        self.out_bypass = Bypass(self.dim) if self.factor > 1 else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, chunk_size: int, left: int,
                caches: Optional[List[torch.Tensor]] = None,
                processed: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[List[torch.Tensor]]]:
        """x: (N, T50, D) at 50 Hz, T50 a multiple of the factor; lengths: (N,) valid 50 Hz
        frames. Whole utterances: ``chunk_size`` 50 Hz frames per chunk (<= 0: full
        context) and ``left`` frames of left context at this stack's rate (-1: unlimited).
        Streaming: x is one chunk, ``caches`` the 6 per layer (batch first), ``processed``
        (N,) 50 Hz frames before the chunk. Returns (N, T50, D) and the new caches."""
        f = self.factor
        orig = x
        valid = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        x = self.downsample(x * valid.unsqueeze(-1).to(x.dtype))
        t = x.shape[1]
        # ceil(lengths / f) without negative floor division, which ONNX export truncates.
        valid_here = torch.div(lengths + f - 1, f, rounding_mode="floor")
        pad = torch.arange(t, device=x.device).unsqueeze(0) >= valid_here.unsqueeze(1)
        if (CHUNK_BLOCKS and caches is None and chunk_size > 0 and left >= 0
                and left + chunk_size // f < t):
            # Each chunk's window is shorter than the utterance: attend block by block.
            mask = ChunkBlocks.build(pad, chunk_size // f, left)
        elif caches is None:
            mask = pad[:, None, None, :]
            chunk_mask = chunk_attention_mask(t, chunk_size // f, left, x.device)
            if chunk_mask is not None:
                mask = mask | chunk_mask
        else:
            cache_left = caches[0].shape[1]
            slots = torch.arange(-cache_left, 0, device=x.device).unsqueeze(0)
            cache_mask = slots + (processed // f).unsqueeze(1) < 0  # frames before the start
            mask = torch.cat([cache_mask, pad], dim=1)[:, None, None, :]
        per_layer = len(LAYER_CACHE_NAMES)
        new_caches: Optional[List[torch.Tensor]] = [] if caches is not None else None
        for j, layer in enumerate(self.layers):
            mine = caches[j * per_layer : (j + 1) * per_layer] if caches is not None else None
            x, new = layer(x, mask, pad, mine)
            if new_caches is not None:
                new_caches += new
        x = upsample(x, f)
        if self.out_bypass is not None:
            x = self.out_bypass(orig, x)
        return x, new_caches


@dataclass
class ZipformerState:
    """What crosses a chunk boundary, for N streams: ``caches`` the six tensors of
    :data:`LAYER_CACHE_NAMES` for every layer of every stack in order, batch first (see
    :meth:`ZipformerLayer.forward`); ``processed_frames`` (N,) int64 50 Hz frames already
    encoded (masks the caches while they are not yet full)."""

    caches: List[torch.Tensor]
    processed_frames: torch.Tensor


def stack_states(states: List[ZipformerState]) -> ZipformerState:
    """N single-stream states -> one state of batch N."""
    return ZipformerState(
        caches=[torch.cat(parts, dim=0) for parts in zip(*(s.caches for s in states))],
        processed_frames=torch.cat([s.processed_frames for s in states]))


def unstack_states(state: ZipformerState) -> List[ZipformerState]:
    """Inverse of :func:`stack_states`."""
    return [ZipformerState(caches=[c[i : i + 1] for c in state.caches],
                           processed_frames=state.processed_frames[i : i + 1])
            for i in range(state.processed_frames.shape[0])]


class ZipformerEncoder(nn.Module):
    """The Conformer encoder's interface (``forward``, ``init_state``,
    ``streaming_forward``, ``embed.set_feature_stats``, ``output_dim``) over a Zipformer."""

    # Read by the trainer's --precision auto. Training batches change shape every step, and
    # under bf16 oneDNN builds new matmul kernels for each shape (its verbose log on one
    # Xeon: about 200 per zipformer-small step, 0.4 s of it), more than bf16 saves on this
    # encoder's many narrow matmuls; fp32 measured faster
    # (benchmarks/results/training_zipformer_xeon_amx.md).
    cpu_bf16_slower = True

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = ZipformerEmbed(config.feature_dim, config.embed_channels,
                                    config.encoder_dims[0])
        self.stacks = nn.ModuleList(ZipformerStack(config, i) for i in range(config.num_stacks))
        self.output_downsample = Downsample(2)

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def _output(self, outputs: List[torch.Tensor], num_frames: int) -> torch.Tensor:
        """Stack outputs (N, T50', D_i) -> (N, num_frames // 2, max(D)) at 25 Hz."""
        x = outputs[-1]
        for earlier in reversed(outputs[:-1]):
            if earlier.shape[-1] > x.shape[-1]:
                x = torch.cat([x, earlier[..., x.shape[-1]:]], dim=-1)
        x = convert_channels(x, self.output_dim)
        return self.output_downsample(x[:, : 2 * (num_frames // 2)])

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor, chunk_size: int = -1,
                left_context: int = -1, return_layers: bool = False):
        """Whole utterances. x: (N, T_in, F), x_lens: (N,).

        ``chunk_size`` > 0 (25 Hz frames) simulates streaming with chunks and
        ``left_context`` output frames before each (-1: unlimited); needs ``causal=True``.
        Returns (N, T, max(D)), (N,) lengths and with ``return_layers`` one (N, T, max(D))
        hidden layer per stack (module docstring)."""
        self.config.check_chunking(chunk_size, left_context)
        x, lengths50 = self.embed(x, x_lens)
        num_frames = x.shape[1]
        x = nn.functional.pad(x, (0, 0, 0, (-num_frames) % self.config.frame_multiple))
        chunk50 = 2 * chunk_size if chunk_size > 0 else -1
        outputs = []
        for i, stack in enumerate(self.stacks):
            x, _ = stack(convert_channels(x, stack.dim), lengths50, chunk50,
                         self.config.stack_left_context(i, left_context))
            outputs.append(x)
        out = self._output(outputs, num_frames)
        lengths = torch.div(lengths50, 2, rounding_mode="floor")
        if return_layers:
            layers = [self._output(outputs[: i + 1], num_frames) for i in range(len(outputs) - 1)]
            return out, lengths, layers + [out]
        return out, lengths

    # ---------------------------------------------------------------- streaming API
    def init_state(self, batch_size: int, left_context: int, device=None,
                   dtype: torch.dtype = torch.float32) -> ZipformerState:
        """Zero caches for ``batch_size`` new streams with ``left_context`` output (25 Hz)
        frames of left context (``stack_left_context`` frames in each stack)."""
        if left_context < 0:
            raise ValueError("chunk-wise streaming needs a finite --left-context (>= 0)")
        caches: List[torch.Tensor] = []
        for i, stack in enumerate(self.stacks):
            left = self.config.stack_left_context(i, left_context)
            for layer in stack.layers:
                caches += layer.init_caches(batch_size, left, device, dtype)
        return ZipformerState(caches, torch.zeros(batch_size, dtype=torch.int64, device=device))

    def streaming_forward(self, chunk: torch.Tensor, chunk_lens: torch.Tensor,
                          state: ZipformerState
                          ) -> Tuple[torch.Tensor, torch.Tensor, ZipformerState]:
        """One chunk for N streams, as :meth:`ConformerEncoder.streaming_forward`.

        chunk: (N, 4C + 3, F) feature frames (consecutive calls overlap by 3 frames);
        chunk_lens: (N,) valid frames (fewer at the end of a stream). Returns (N, C,
        max(D)), (N,) valid output frames and the new state."""
        if not self.config.causal:
            raise ValueError("streaming_forward needs a causal (streaming) encoder")
        x, lengths50 = self.embed(chunk, chunk_lens)
        num_frames = x.shape[1]
        if num_frames % self.config.frame_multiple:
            raise ValueError(f"a chunk of {chunk.shape[1]} feature frames is {num_frames} "
                             f"frames at 50 Hz, not a multiple of {self.config.frame_multiple}: "
                             f"--chunk-size must make 2 x chunk size a multiple of it")
        processed = state.processed_frames
        outputs, new_caches, offset = [], [], 0
        for stack in self.stacks:
            count = len(stack.layers) * len(LAYER_CACHE_NAMES)
            x, new = stack(convert_channels(x, stack.dim), lengths50, -1, -1,
                           state.caches[offset : offset + count], processed)
            offset += count
            new_caches += new
            outputs.append(x)
        out = self._output(outputs, num_frames)
        return (out, torch.div(lengths50, 2, rounding_mode="floor"),
                ZipformerState(new_caches, processed + lengths50))
