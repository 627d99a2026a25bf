"""The encoder kinds a :class:`~icefall_kd.model.transducer.Transducer` can hold, and the
state helpers that work for either (the chunk-wise recogniser batches streams of both).

Both kinds share one interface: ``forward(features, feature_lens, chunk_size, left_context,
return_layers)``, ``init_state``, ``streaming_forward``, ``embed.set_feature_stats``,
``output_dim`` and ``config.num_layers`` (the hidden layers ``return_layers`` gives), with
the same frame rate (25 Hz) and frame count (:func:`frames_after_subsampling`).
"""

from __future__ import annotations

from typing import List, Union

from torch import nn

from icefall_kd.model import conformer, zipformer
from icefall_kd.model.conformer import ConformerEncoder, EncoderConfig
from icefall_kd.model.zipformer import ZipformerConfig, ZipformerEncoder, ZipformerState

# kind -> (config class, encoder class); "conformer" is what checkpoints without a kind hold.
ENCODER_KINDS = {
    "conformer": (EncoderConfig, ConformerEncoder),
    "zipformer": (ZipformerConfig, ZipformerEncoder),
}

AnyEncoderConfig = Union[EncoderConfig, ZipformerConfig]


def encoder_kind_of(config: AnyEncoderConfig) -> str:
    for kind, (config_class, _) in ENCODER_KINDS.items():
        if type(config) is config_class:
            return kind
    raise TypeError(f"not an encoder config: {type(config).__name__}")


def encoder_config_from_dict(kind: str, fields: dict) -> AnyEncoderConfig:
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; choose from {sorted(ENCODER_KINDS)}")
    return ENCODER_KINDS[kind][0](**fields)


def build_encoder(config: AnyEncoderConfig) -> nn.Module:
    return ENCODER_KINDS[encoder_kind_of(config)][1](config)


def stack_states(states: List) -> object:
    """N single-stream states of either encoder kind -> one state of batch N."""
    if states and isinstance(states[0], ZipformerState):
        return zipformer.stack_states(states)
    return conformer.stack_states(states)


def unstack_states(state) -> List:
    """Inverse of :func:`stack_states`."""
    if isinstance(state, ZipformerState):
        return zipformer.unstack_states(state)
    return conformer.unstack_states(state)
