"""Stateless decoder, joiner and the transducer that holds them with an encoder.

The decoder and joiner follow icefall (and the sherpa-onnx contract): the decoder sees the
last ``context_size`` tokens (blank-padded at the start), the joiner adds projected encoder
and decoder outputs, applies tanh and a linear layer to raw logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Optional

import torch
from torch import nn

from icefall_kd.loss.transducer_loss import TransducerLossOutput, ctc_loss, pruned_transducer_loss
from icefall_kd.model.conformer import EncoderConfig
from icefall_kd.model.encoders import (
    AnyEncoderConfig,
    build_encoder,
    encoder_config_from_dict,
    encoder_kind_of,
)


class StatelessDecoder(nn.Module):
    def __init__(self, vocab_size: int, decoder_dim: int, blank_id: int = 0,
                 context_size: int = 2) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, decoder_dim)
        self.conv = (
            nn.Conv1d(decoder_dim, decoder_dim, context_size, groups=max(decoder_dim // 4, 1),
                      bias=False)
            if context_size > 1 else None
        )

    def forward(self, y: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        """y: (N, U) token ids. With ``need_pad`` (training) the output at u depends on
        y[u - context_size + 1 .. u], zero-padded on the left; without it (decoding) y holds
        exactly ``context_size`` tokens and the output has one frame. -> (N, U', decoder_dim)."""
        embedded = self.embedding(y.clamp(min=0)) * (y >= 0).unsqueeze(-1)
        if self.conv is not None:
            x = embedded.transpose(1, 2)
            if need_pad:
                x = nn.functional.pad(x, (self.context_size - 1, 0))
            embedded = self.conv(x).transpose(1, 2)
        return torch.relu(embedded)


class Joiner(nn.Module):
    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab_size)

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor,
                project_input: bool = True) -> torch.Tensor:
        """Broadcastable (..., encoder_dim) and (..., decoder_dim) -> (..., vocab) logits;
        with ``project_input=False`` both are already projected to joiner_dim."""
        if project_input:
            encoder_out = self.encoder_proj(encoder_out)
            decoder_out = self.decoder_proj(decoder_out)
        return self.output_linear(torch.tanh(encoder_out + decoder_out))


@dataclass
class TransducerConfig:
    encoder: AnyEncoderConfig = field(default_factory=EncoderConfig)
    vocab_size: int = 500
    blank_id: int = 0
    context_size: int = 2
    decoder_dim: int = 256
    joiner_dim: int = 256
    # "conformer" or "zipformer" (icefall_kd.model.encoders); "" = the kind of ``encoder``.
    # Checkpoints written before the field hold a Conformer and read as "conformer".
    encoder_kind: str = ""

    def __post_init__(self) -> None:
        kind = encoder_kind_of(self.encoder)
        if self.encoder_kind not in ("", kind):
            raise ValueError(f"encoder_kind {self.encoder_kind!r} but the encoder config is "
                             f"a {kind} one")
        self.encoder_kind = kind

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TransducerConfig":
        """From :meth:`to_dict`'s output; fields added since a checkpoint was written (such
        as ``encoder.conv_context`` or ``encoder_kind``) take their defaults, what those
        checkpoints computed."""
        d = dict(d)
        kind = d.pop("encoder_kind", "") or "conformer"
        return cls(encoder=encoder_config_from_dict(kind, d.pop("encoder")),
                   encoder_kind=kind, **d)


def current_config_dict(saved: dict) -> dict:
    """A stored model config as this code reads it (missing fields at their defaults), so
    that comparing it with a new one names real differences only."""
    return TransducerConfig.from_dict(saved).to_dict()


class Transducer(nn.Module):
    """Encoder + stateless decoder + joiner, plus the linear "simple" heads of the pruned
    RNN-T loss (am: encoder -> vocab, lm: decoder -> vocab)."""

    def __init__(self, config: TransducerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config.encoder)
        self.decoder = StatelessDecoder(config.vocab_size, config.decoder_dim,
                                        config.blank_id, config.context_size)
        self.joiner = Joiner(self.encoder.output_dim, config.decoder_dim, config.joiner_dim,
                             config.vocab_size)
        self.simple_am_proj = nn.Linear(self.encoder.output_dim, config.vocab_size)
        self.simple_lm_proj = nn.Linear(config.decoder_dim, config.vocab_size)
        # Auxiliary CTC head (icefall's --use-ctc): speeds up learning the alignment, which
        # matters when a CPU budget allows only a few thousand updates.
        self.ctc_output = nn.Linear(self.encoder.output_dim, config.vocab_size)

    @property
    def causal(self) -> bool:
        return self.config.encoder.causal

    def forward(self, features: torch.Tensor, feature_lens: torch.Tensor, token_ids,
                chunk_size: int = -1, left_context: int = -1, prune_range: int = 5,
                lm_scale: float = 0.25, am_scale: float = 0.0, delay_penalty: float = 0.0,
                with_ctc: bool = False, return_layers: bool = False) -> "TransducerForward":
        """Encoder plus pruned RNN-T loss (and CTC with ``with_ctc``) in one call, so DDP
        sees one forward.

        features: (N, T_in, 80); feature_lens: (N,); token_ids: N lists of BPE ids.
        """
        encoder_out, encoder_lens, layers = self.encoder(features, feature_lens, chunk_size,
                                                         left_context, return_layers=True)
        loss = pruned_transducer_loss(self, encoder_out, encoder_lens, token_ids, prune_range,
                                      lm_scale, am_scale, delay_penalty)
        return TransducerForward(
            loss=loss, encoder_out=encoder_out, encoder_lens=encoder_lens,
            ctc_loss=ctc_loss(self, encoder_out, encoder_lens, token_ids) if with_ctc else None,
            encoder_layers=layers if return_layers else None,
        )


@dataclass
class TransducerForward:
    """What :meth:`Transducer.forward` computes on a batch.

    loss: the pruned RNN-T loss and its lattice; encoder_out: (N, T, D); encoder_lens: (N,);
    ctc_loss: the auxiliary CTC loss summed over the batch (``with_ctc``), else None;
    encoder_layers: every encoder layer's (N, T, D) output (``return_layers``, for
    hidden-layer distillation), else None.
    """

    loss: TransducerLossOutput
    encoder_out: torch.Tensor
    encoder_lens: torch.Tensor
    ctc_loss: Optional[torch.Tensor] = None
    encoder_layers: Optional[List[torch.Tensor]] = None


# Model sizes. "paper" and "zipformer-paper" are LibriSpeech-960h sizes for GPUs,
# documented, not run here. A preset without "encoder_kind" is a Conformer.
PRESETS = {
    "tiny": dict(encoder=dict(d_model=64, num_layers=2, num_heads=2, ff_dim=128, conv_kernel=7,
                              max_relative_distance=32), decoder_dim=64, joiner_dim=64),
    "small": dict(encoder=dict(d_model=96, num_layers=4, num_heads=4, ff_dim=384, conv_kernel=15),
                  decoder_dim=128, joiner_dim=128),
    "default": dict(encoder=dict(d_model=144, num_layers=6, num_heads=4, ff_dim=576,
                                 conv_kernel=15), decoder_dim=256, joiner_dim=256),
    "paper": dict(encoder=dict(d_model=256, num_layers=12, num_heads=4, ff_dim=1024,
                               conv_kernel=31, max_relative_distance=128),
                  decoder_dim=512, joiner_dim=512),
    # Zipformers at 50 Hz / (1, 2, 4, 2) (tiny) and icefall's (1, 2, 4, 8, 4, 2); parameter
    # counts near the Conformer's tiny and small (measured in README.md's encoder section).
    "zipformer-tiny": dict(
        encoder_kind="zipformer",
        encoder=dict(downsampling_factors=(1, 2, 4, 2), encoder_dims=(40, 48, 56, 48),
                     layers_per_stack=(1, 1, 1, 1), num_heads=(2, 2, 2, 2),
                     feedforward_dims=(80, 96, 112, 96), conv_kernels=(7, 7, 5, 7),
                     query_head_dim=16, value_head_dim=8, pos_dim=16,
                     embed_channels=(4, 8, 16)),
        decoder_dim=64, joiner_dim=64),
    "zipformer-small": dict(
        encoder_kind="zipformer",
        encoder=dict(downsampling_factors=(1, 2, 4, 8, 4, 2),
                     encoder_dims=(64, 64, 96, 112, 96, 64),
                     layers_per_stack=(1, 1, 1, 1, 1, 1), num_heads=(4, 4, 4, 4, 4, 4),
                     feedforward_dims=(128, 128, 192, 224, 192, 128),
                     conv_kernels=(15, 15, 15, 15, 15, 15), query_head_dim=16,
                     value_head_dim=12, pos_dim=32, embed_channels=(8, 16, 64)),
        decoder_dim=128, joiner_dim=128),
    # icefall's egs/librispeech/ASR/zipformer defaults (about 65 M parameters with its
    # 512-dim decoder and joiner).
    "zipformer-paper": dict(
        encoder_kind="zipformer",
        encoder=dict(downsampling_factors=(1, 2, 4, 8, 4, 2),
                     encoder_dims=(192, 256, 384, 512, 384, 256),
                     layers_per_stack=(2, 2, 3, 4, 3, 2), num_heads=(4, 4, 4, 8, 4, 4),
                     feedforward_dims=(512, 768, 1024, 1536, 1024, 768),
                     conv_kernels=(31, 31, 15, 15, 15, 31), query_head_dim=32,
                     value_head_dim=12, pos_dim=48, embed_channels=(8, 32, 128)),
        decoder_dim=512, joiner_dim=512),
}


def build_transducer(preset: str, vocab_size: int, causal: bool,
                     dropout: Optional[float] = None, conv_context: str = "causal") -> Transducer:
    """A new model of ``preset``; ``conv_context`` (causal | chunk) matters for streaming
    (``causal=True``) encoders only, the full-context one always has a centred kernel."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose from {sorted(PRESETS)}")
    spec = PRESETS[preset]
    encoder = encoder_config_from_dict(spec.get("encoder_kind", "conformer"), dict(
        spec["encoder"], causal=causal, conv_context=conv_context))
    if dropout is not None:
        encoder.dropout = dropout
    config = TransducerConfig(encoder=encoder, vocab_size=vocab_size,
                              decoder_dim=spec["decoder_dim"], joiner_dim=spec["joiner_dim"])
    return Transducer(config)
