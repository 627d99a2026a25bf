"""Exported ONNX files against the PyTorch model (icefall's onnx_check.py).

The reference is the model's own API (``streaming_forward`` with its batch-first
:class:`~icefall_kd.model.conformer.StreamingState`, ``encoder.forward``, the decoder and
joiner as the PyTorch search calls them), not the export wrappers, so a wrong state layout
or frame count in a wrapper shows up as a difference. The onnxruntime side is driven the way
sherpa-onnx drives it: zero states shaped from the encoder's metadata, ``T`` frames per call,
``processed_frames`` advancing by ``decode_chunk_len``, states carried from its own outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import torch

from icefall_kd.export.contract import (
    DECODER,
    JOINER,
    offline_encoder_contract,
    STREAMING_ENCODER,
    check_onnx_file,
)
from icefall_kd.export.onnx_export import TransducerFiles
from icefall_kd.model.conformer import StreamingState, stack_states
from icefall_kd.model.transducer import Transducer

# fp32 onnxruntime vs PyTorch on CPU agree to ~1e-6; 1e-4 leaves room for other kernels
# while still catching any real mismatch (a wrong cache slot changes outputs by ~1e-1).
DEFAULT_TOLERANCE = 1e-4


@dataclass
class OnnxCheckResult:
    max_abs_diff: Dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst <= self.tolerance

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {v:.2e}" for k, v in self.max_abs_diff.items())
        return f"max |onnx - torch|: {parts} (tolerance {self.tolerance:.0e})"


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _features(model: Transducer, shape, generator: torch.Generator) -> torch.Tensor:
    """Random features that are N(0, 1) after the model's global CMVN."""
    embed = model.encoder.embed
    return embed.feature_mean + torch.randn(shape, generator=generator) / embed.feature_inv_std


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@torch.no_grad()
def check_decoder_joiner(model: Transducer, files: TransducerFiles, result: OnnxCheckResult,
                         batch_size: int, generator: torch.Generator) -> None:
    check_onnx_file(files.decoder, DECODER)
    check_onnx_file(files.joiner, JOINER)
    cfg = model.config
    y = torch.randint(0, cfg.vocab_size, (batch_size, cfg.context_size), generator=generator)
    y[0, :-1] = -1
    y[0, -1] = cfg.blank_id  # sherpa-onnx's first decoder input
    reference = model.joiner.decoder_proj(model.decoder(y, need_pad=False)[:, -1])
    (decoder_out,) = _session(files.decoder).run(None, {"y": y.numpy()})
    result.max_abs_diff["decoder"] = _diff(decoder_out, reference)
    enc = torch.randn(batch_size, cfg.joiner_dim, generator=generator)
    dec = torch.randn(batch_size, cfg.joiner_dim, generator=generator)
    (logit,) = _session(files.joiner).run(None, {"encoder_out": enc.numpy(),
                                                 "decoder_out": dec.numpy()})
    result.max_abs_diff["joiner"] = _diff(logit, model.joiner(enc, dec, project_input=False))


@torch.no_grad()
def check_streaming_onnx(model: Transducer, files: TransducerFiles, num_chunks: int = 6,
                         batch_size: int = 2, seed: int = 0,
                         tolerance: float = DEFAULT_TOLERANCE) -> OnnxCheckResult:
    """Runs ``num_chunks`` chunks for ``batch_size`` streams through both. Stream b first
    runs b chunks alone (in PyTorch), so the batch mixes streams at different positions,
    as sherpa-onnx's batches do. Compares encoder_out (after ``encoder_proj``) and the new
    states at every chunk, and the decoder and joiner on random inputs."""
    model = model.eval()
    meta = {k: int(v) for k, v in check_onnx_file(files.encoder, STREAMING_ENCODER).items()
            if v.lstrip("-").isdigit()}
    chunk_size = meta["decode_chunk_len"] // 4
    left, window, layers = meta["left_context"], meta["T"], meta["num_encoder_layers"]
    dim, kernel = meta["encoder_dim"], meta["cnn_module_kernel"]
    feature_dim = model.config.encoder.feature_dim
    generator = torch.Generator().manual_seed(seed)
    session = _session(files.encoder)
    result = OnnxCheckResult(tolerance=tolerance)

    def torch_chunk(x: torch.Tensor, state: StreamingState):
        lens = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
        out, _, new_state = model.encoder.streaming_forward(x, lens, state)
        return model.joiner.encoder_proj(out), new_state

    # Warm-up: stream b has consumed b chunks before the batched run starts.
    states: List[StreamingState] = []
    for b in range(batch_size):
        state = model.encoder.init_state(1, left)
        for _ in range(b):
            _, state = torch_chunk(_features(model, (1, window, feature_dim), generator), state)
        states.append(state)
    state = stack_states(states)
    # sherpa-onnx's layout: (layers, left_context, N, dim) and (layers, kernel - 1, N, dim).
    cached_attn = state.attn_cache.transpose(1, 2).numpy()
    cached_conv = state.conv_cache.permute(0, 3, 1, 2).numpy()
    expected = {"attn": (layers, left, batch_size, dim),
                "conv": (layers, kernel - 1, batch_size, dim)}
    if cached_attn.shape != expected["attn"] or cached_conv.shape != expected["conv"]:
        raise AssertionError(f"model states {cached_attn.shape}, {cached_conv.shape} do not match "
                             f"the shapes sherpa-onnx derives from the metadata: {expected}")
    processed = np.arange(batch_size, dtype=np.int64) * meta["decode_chunk_len"]
    worst = {"encoder_out": 0.0, "new_cached_attn": 0.0, "new_cached_conv": 0.0}
    for _ in range(num_chunks):
        x = _features(model, (batch_size, window, feature_dim), generator)
        reference, state = torch_chunk(x, state)
        encoder_out, cached_attn, cached_conv = session.run(None, {
            "x": x.numpy(), "cached_attn": cached_attn, "cached_conv": cached_conv,
            "processed_frames": processed,
        })
        if encoder_out.shape != (batch_size, chunk_size, model.config.joiner_dim):
            raise AssertionError(f"encoder_out has shape {encoder_out.shape}, expected "
                                 f"{(batch_size, chunk_size, model.config.joiner_dim)}")
        worst["encoder_out"] = max(worst["encoder_out"], _diff(encoder_out, reference))
        worst["new_cached_attn"] = max(worst["new_cached_attn"],
                                       _diff(cached_attn, state.attn_cache.transpose(1, 2)))
        worst["new_cached_conv"] = max(worst["new_cached_conv"],
                                       _diff(cached_conv, state.conv_cache.permute(0, 3, 1, 2)))
        processed = processed + meta["decode_chunk_len"]
    result.max_abs_diff.update(worst)
    check_decoder_joiner(model, files, result, batch_size, generator)
    return result


@torch.no_grad()
def check_offline_onnx(model: Transducer, files: TransducerFiles, batch_size: int = 3,
                       seed: int = 0, tolerance: float = DEFAULT_TOLERANCE) -> OnnxCheckResult:
    """A padded batch of random lengths through the offline encoder (valid frames compared,
    lengths must be equal), then the decoder and joiner."""
    model = model.eval()
    check_onnx_file(files.encoder, offline_encoder_contract(model.config.encoder_kind))
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(50, 300, (batch_size,), generator=generator)
    x = _features(model, (batch_size, int(lengths.max()), model.config.encoder.feature_dim),
                  generator)
    reference, reference_lens = model.encoder(x, lengths)
    reference = model.joiner.encoder_proj(reference)
    encoder_out, encoder_out_lens = _session(files.encoder).run(
        None, {"x": x.numpy(), "x_lens": lengths.numpy()})
    if not np.array_equal(encoder_out_lens, reference_lens.numpy()):
        raise AssertionError(f"encoder_out_lens {encoder_out_lens} != {reference_lens.tolist()}")
    result = OnnxCheckResult(tolerance=tolerance)
    result.max_abs_diff["encoder_out"] = max(
        _diff(encoder_out[b, :n], reference[b, :n]) for b, n in enumerate(reference_lens.tolist()))
    check_decoder_joiner(model, files, result, batch_size, generator)
    return result
