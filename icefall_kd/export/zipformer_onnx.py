"""Export of a streaming Zipformer to sherpa-onnx's ``zipformer2`` contract.

Read from sherpa-onnx's ``online-zipformer2-transducer-model.cc``: the encoder's inputs are
bound by position: ``x`` (N, T, 80), then for every layer of every stack, in order,
``cached_key`` (L_i, N, H qd), ``cached_nonlin_attn`` (1, N, L_i, 3 D_i / 4),
``cached_val1`` and ``cached_val2`` (L_i, N, H vd), ``cached_conv1`` and ``cached_conv2``
(N, D_i, kernel_i // 2), then ``embed_states`` (N, 128, 3, ((F - 1) // 2 - 1) // 2) and
``processed_lens`` (N,) int64; the outputs are ``encoder_out`` (N, C, J) and the new states
in the same order. sherpa-onnx builds zero states from the metadata (``encoder_dims``,
``query_head_dims``, ``value_head_dims``, ``num_heads``, ``num_encoder_layers``,
``cnn_module_kernels``, ``left_context_len``: comma lists per stack; ``T``,
``decode_chunk_len``), feeds T frames and advances decode_chunk_len, and carries every state
without reading it (``processed_lens`` included).

Our front end has no state (icefall's ConvNeXt, which it caches, is left out), so
``embed_states`` is passed through unchanged; ``processed_lens`` counts 50 Hz frames, as the
model's :class:`ZipformerState` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

import onnx

from icefall_kd.export.contract import (
    DECODER,
    FLOAT,
    INT64,
    STREAMING_ENCODER,
    OnnxContract,
    check_onnx_file,
    validate_metadata,
    validate_tokens,
)
from icefall_kd.export.onnx_parity import (
    DEFAULT_TOLERANCE,
    OnnxCheckResult,
    _diff,
    _features,
    _session,
    check_decoder_joiner,
)
from icefall_kd.model.subsampling import SUBSAMPLING_LOOKAHEAD_FRAMES
from icefall_kd.model.transducer import Transducer
from icefall_kd.model.zipformer import ZipformerState
from icefall_kd.model.zipformer.layer import LAYER_CACHE_NAMES

EMBED_STATE_CHANNELS = 128  # fixed in sherpa-onnx's GetEncoderInitStates
# Batch axis of each per-layer state in sherpa-onnx's layout (its StackStates).
STATE_BATCH_AXES = (1, 1, 1, 1, 0, 0)


def state_names(model_or_layers) -> List[str]:
    """The encoder's state inputs in order; ``model_or_layers``: a Transducer or the total
    number of Zipformer layers."""
    count = (model_or_layers if isinstance(model_or_layers, int)
             else sum(model_or_layers.config.encoder.layers_per_stack))
    names = [f"{name}_{i}" for i in range(count) for name in LAYER_CACHE_NAMES]
    return names + ["embed_states", "processed_lens"]


def zipformer2_contract(model_or_layers) -> OnnxContract:
    names = state_names(model_or_layers)
    return OnnxContract(
        role="streaming zipformer2 encoder",
        inputs=(("x", FLOAT),) + tuple((n, INT64 if n == "processed_lens" else FLOAT)
                                      for n in names),
        outputs=("encoder_out",) + tuple(f"new_{n}" for n in names),
        int_metadata=("T", "decode_chunk_len"),
        fixed_metadata={"model_type": "zipformer2"},
    )


def zipformer2_metadata(model: Transducer, chunk_size: int, left_context: int) -> Dict[str, str]:
    enc = model.config.encoder

    def join(values) -> str:
        return ",".join(str(v) for v in values)

    stacks = range(enc.num_stacks)
    return {
        "model_type": "zipformer2", "version": "1", "model_author": "icefall-kd",
        "comment": f"streaming zipformer, chunk {chunk_size}, left context {left_context}",
        "encoder_dims": join(enc.encoder_dims),
        "query_head_dims": join([enc.query_head_dim] * enc.num_stacks),
        "value_head_dims": join([enc.value_head_dim] * enc.num_stacks),
        "num_heads": join(enc.num_heads),
        "num_encoder_layers": join(enc.layers_per_stack),
        "cnn_module_kernels": join(enc.conv_kernels),
        "left_context_len": join(enc.stack_left_context(i, left_context) for i in stacks),
        "T": str(4 * chunk_size + SUBSAMPLING_LOOKAHEAD_FRAMES),
        "decode_chunk_len": str(4 * chunk_size),
        "chunk_size": str(chunk_size),  # ours, for naming and checks
        "left_context": str(left_context),  # ours: output (25 Hz) frames
    }


def to_zipformer2_states(state: ZipformerState, embed_states: torch.Tensor) -> List[torch.Tensor]:
    """Model state (batch first) -> sherpa-onnx's list (see the module docstring)."""
    out = []
    for j, cache in enumerate(state.caches):
        kind = j % len(LAYER_CACHE_NAMES)
        if kind == 1:
            out.append(cache.unsqueeze(0))  # (1, N, L, 3D/4)
        elif kind in (0, 2, 3):
            out.append(cache.transpose(0, 1))  # (L, N, E)
        else:
            out.append(cache)  # (N, D, kernel // 2)
    return out + [embed_states, state.processed_frames]


def from_zipformer2_states(states: List[torch.Tensor]) -> Tuple[ZipformerState, torch.Tensor]:
    """Inverse of :func:`to_zipformer2_states`: (model state, embed_states)."""
    caches = []
    for j, s in enumerate(states[:-2]):
        kind = j % len(LAYER_CACHE_NAMES)
        caches.append(s[0] if kind == 1 else s.transpose(0, 1) if kind in (0, 2, 3) else s)
    return ZipformerState(caches, states[-1]), states[-2]


class ZipformerStreamingEncoderForSherpa(nn.Module):
    """One chunk in sherpa-onnx's ``zipformer2`` layout: forward(x (N, 4C + 3, 80), *states)
    -> (encoder_out (N, C, J) projected by ``joiner.encoder_proj``, *new states)."""

    def __init__(self, model: Transducer, chunk_size: int, left_context: int) -> None:
        super().__init__()
        if not model.causal:
            raise ValueError("streaming export needs a streaming (causal) model")
        if chunk_size <= 0 or left_context <= 0:
            raise ValueError(f"streaming export needs a fixed chunk size and left context > 0, "
                             f"got chunk {chunk_size}, left context {left_context}")
        model.config.encoder.check_chunking(chunk_size, left_context)
        self.encoder = model.encoder
        self.encoder_proj = model.joiner.encoder_proj
        self.chunk_size, self.left_context = chunk_size, left_context

    def forward(self, x: torch.Tensor, *states: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        state, embed_states = from_zipformer2_states(list(states))
        lengths = torch.full_like(state.processed_frames, x.shape[1])
        out, _, new_state = self.encoder.streaming_forward(x, lengths, state)
        return (self.encoder_proj(out), *to_zipformer2_states(new_state, embed_states.clone()))

    def init_states(self, batch_size: int = 1) -> List[torch.Tensor]:
        feature_dim = self.encoder.config.feature_dim
        embed = torch.zeros(batch_size, EMBED_STATE_CHANNELS, 3, ((feature_dim - 1) // 2 - 1) // 2)
        return to_zipformer2_states(self.encoder.init_state(batch_size, self.left_context), embed)

    def example_inputs(self, batch_size: int = 2) -> Tuple[torch.Tensor, ...]:
        x = torch.zeros(batch_size, 4 * self.chunk_size + SUBSAMPLING_LOOKAHEAD_FRAMES,
                        self.encoder.config.feature_dim)
        return (x, *self.init_states(batch_size))


def export_streaming_zipformer_onnx(model: Transducer, out_dir: Path, suffix: str,
                                    chunk_size: int, left_context: int, tokens: Path,
                                    quantize: bool = True,
                                    extra_metadata: Optional[Mapping[str, str]] = None) -> Dict:
    """Streaming Zipformer -> {"fp32": files, "int8": files}, as
    :func:`~icefall_kd.export.onnx_export.export_streaming_onnx` for the Conformer."""
    from icefall_kd.export import onnx_export as ox

    model = model.eval()
    encoder = ZipformerStreamingEncoderForSherpa(model, chunk_size, left_context)
    contract = zipformer2_contract(model)
    metadata = {**zipformer2_metadata(model, chunk_size, left_context), **(extra_metadata or {})}
    validate_metadata(metadata, contract)
    validate_metadata(ox.decoder_metadata(model), DECODER)
    validate_tokens(tokens, model.config.vocab_size)
    names = state_names(model)
    axes = {"x": {0: "N"}, "encoder_out": {0: "N"}}
    for j, name in enumerate(names):
        axis = STATE_BATCH_AXES[j % 6] if j < len(names) - 2 else 0
        axes[name] = {axis: "N"}
        axes[f"new_{name}"] = {axis: "N"}
    models = {"encoder": (contract, ox.to_onnx(encoder, encoder.example_inputs(2), contract,
                                               axes, metadata))}
    models.update(ox._decoder_and_joiner(model))
    return ox._write(models, tokens, Path(out_dir), suffix, quantize)


def check_streaming_encoder_file(path: Path) -> Dict[str, str]:
    """Validates a streaming encoder file against the contract its ``model_type`` names
    (``zipformer2`` or ``conformer``); returns its metadata."""
    path = Path(path)
    if not path.is_file():
        return check_onnx_file(path, STREAMING_ENCODER)  # its "does not exist" message
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if meta.get("model_type") != "zipformer2":
        return check_onnx_file(path, STREAMING_ENCODER)
    layers = sum(int(v) for v in meta.get("num_encoder_layers", "0").split(","))
    return check_onnx_file(path, zipformer2_contract(layers))


@torch.no_grad()
def check_streaming_zipformer_onnx(model: Transducer, files, num_chunks: int = 6,
                                   batch_size: int = 3, seed: int = 0,
                                   tolerance: float = DEFAULT_TOLERANCE) -> OnnxCheckResult:
    """onnxruntime against PyTorch over ``num_chunks`` chunks with carried states, as
    :func:`~icefall_kd.export.onnx_parity.check_streaming_onnx` does for the Conformer:
    stream b first runs b chunks alone, so the batch mixes stream positions; encoder_out and
    every new state are compared at every chunk, then the decoder and joiner."""
    model = model.eval()
    meta = check_onnx_file(files.encoder, zipformer2_contract(model))
    chunk_size = int(meta["decode_chunk_len"]) // 4
    left = int(meta["left_context"])
    wrapper = ZipformerStreamingEncoderForSherpa(model, chunk_size, left)
    window, feature_dim = int(meta["T"]), model.config.encoder.feature_dim
    generator = torch.Generator().manual_seed(seed)
    singles = []
    for b in range(batch_size):
        states = wrapper.init_states(1)
        for _ in range(b):
            states = list(wrapper(_features(model, (1, window, feature_dim), generator), *states)[1:])
        singles.append(states)
    axes = [STATE_BATCH_AXES[j % 6] if j < len(singles[0]) - 2 else 0
            for j in range(len(singles[0]))]
    states = [torch.cat(parts, dim=axis) for parts, axis in zip(zip(*singles), axes)]
    onnx_states = [s.numpy() for s in states]
    session = _session(files.encoder)
    names = [i.name for i in session.get_inputs()]
    result = OnnxCheckResult(tolerance=tolerance)
    worst = {"encoder_out": 0.0, "new_states": 0.0}
    for _ in range(num_chunks):
        x = _features(model, (batch_size, window, feature_dim), generator)
        reference = wrapper(x, *states)
        got = session.run(None, dict(zip(names, [x.numpy()] + onnx_states)))
        worst["encoder_out"] = max(worst["encoder_out"], _diff(got[0], reference[0]))
        worst["new_states"] = max([worst["new_states"]] + [
            _diff(a, b) for a, b in zip(got[1:], reference[1:])])
        states, onnx_states = list(reference[1:]), got[1:]
    result.max_abs_diff.update(worst)
    check_decoder_joiner(model, files, result, batch_size, generator)
    return result
