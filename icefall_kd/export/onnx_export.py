"""ONNX export for sherpa-onnx: ``encoder-<suffix>.onnx``, ``decoder-<suffix>.onnx``,
``joiner-<suffix>.onnx`` (fp32), their ``.int8.onnx`` dynamic-quantised copies, and
``tokens.txt``.

Streaming student: sherpa-onnx's online ``conformer`` contract
(:data:`~icefall_kd.export.contract.STREAMING_ENCODER`). Full-context teacher: the offline
transducer contract (:data:`~icefall_kd.export.contract.OFFLINE_ENCODER`). Everything is
checked against the contract in memory first; no file is written unless all pass.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

import onnx
import torch
from torch import nn

from icefall_kd.export.contract import (
    DECODER,
    JOINER,
    offline_encoder_contract,
    STREAMING_ENCODER,
    OnnxContract,
    set_metadata,
    validate_graph,
    validate_metadata,
    validate_tokens,
)
from icefall_kd.export.wrappers import (
    DecoderForSherpa,
    JoinerForSherpa,
    OfflineEncoderForSherpa,
    StreamingEncoderForSherpa,
)
from icefall_kd.model.subsampling import SUBSAMPLING_LOOKAHEAD_FRAMES
from icefall_kd.model.transducer import Transducer
from icefall_kd.utils import atomic_output

# SDPA export needs opset >= 14; sherpa-onnx 2.0.1 bundles onnxruntime 1.28, which runs 17.
OPSET_VERSION = 17
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class TransducerFiles:
    """The files sherpa-onnx's ``from_transducer`` takes."""

    encoder: Path
    decoder: Path
    joiner: Path
    tokens: Path

    @classmethod
    def in_dir(cls, directory: Path, suffix: str, precision: str = "fp32") -> "TransducerFiles":
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        ext = ".onnx" if precision == "fp32" else ".int8.onnx"
        directory = Path(directory)
        encoder, decoder, joiner = (directory / f"{part}-{suffix}{ext}"
                                    for part in ("encoder", "decoder", "joiner"))
        return cls(encoder, decoder, joiner, tokens=directory / "tokens.txt")

    def as_dict(self) -> Dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def streaming_encoder_metadata(model: Transducer, chunk_size: int,
                               left_context: int) -> Dict[str, str]:
    """sherpa-onnx's ``conformer`` metadata. Counts of frames: T and decode_chunk_len in
    10 ms feature frames, left_context in encoder frames (the cache length)."""
    enc = model.config.encoder
    decode_chunk_len = 4 * chunk_size
    return {
        "model_type": "conformer",
        "version": "1",
        "model_author": "icefall-kd",
        "comment": f"streaming conformer, chunk {chunk_size}, left context {left_context}",
        "num_encoder_layers": str(enc.num_layers),
        "T": str(decode_chunk_len + SUBSAMPLING_LOOKAHEAD_FRAMES),
        "decode_chunk_len": str(decode_chunk_len),
        "left_context": str(left_context),
        "encoder_dim": str(enc.d_model),
        "pad_length": str(SUBSAMPLING_LOOKAHEAD_FRAMES),
        "cnn_module_kernel": str(enc.conv_kernel),
        "chunk_size": str(chunk_size),  # ours, for naming and checks
        # Ours, informational: "chunk" reads the chunk's own later frames; the conv cache is
        # (cnn_module_kernel - 1) frames either way, so sherpa-onnx runs both unchanged.
        "conv_context": enc.conv_context,
    }


def offline_encoder_metadata(model: Transducer) -> Dict[str, str]:
    """Informational: sherpa-onnx's offline transducer needs no encoder metadata."""
    kind = model.config.encoder_kind
    model_type = "zipformer2" if kind == "zipformer" else kind
    return {"model_type": model_type, "version": "1", "model_author": "icefall-kd",
            "comment": f"non-streaming (full-context) {kind}"}


def decoder_metadata(model: Transducer) -> Dict[str, str]:
    return {"vocab_size": str(model.config.vocab_size),
            "context_size": str(model.config.context_size)}


def joiner_metadata(model: Transducer) -> Dict[str, str]:
    return {"joiner_dim": str(model.config.joiner_dim)}


def to_onnx(module: nn.Module, example_inputs: Tuple[torch.Tensor, ...], contract: OnnxContract,
            dynamic_axes: Mapping[str, Mapping[int, str]], metadata: Mapping[str, str]
            ) -> onnx.ModelProto:
    """Exports in memory, adds the metadata and checks the result against ``contract``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter (the dynamo one needs onnxscript) is deprecated
        # and warns about shape reads in traced Python; onnx_check verifies the result.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), example_inputs, buffer, dynamo=False, opset_version=OPSET_VERSION,
            input_names=list(contract.input_names), output_names=list(contract.outputs),
            dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()}, do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    set_metadata(model, metadata)
    validate_graph(model, contract)
    return model


def _batch_axes(names: Sequence[str], axis: int = 0) -> Dict[str, Dict[int, str]]:
    return {name: {axis: "N"} for name in names}


def _decoder_and_joiner(model: Transducer) -> Dict[str, Tuple[OnnxContract, onnx.ModelProto]]:
    decoder = DecoderForSherpa(model)
    joiner = JoinerForSherpa(model)
    return {
        "decoder": (DECODER, to_onnx(decoder, decoder.example_inputs(), DECODER,
                                     _batch_axes(["y", "decoder_out"]), decoder_metadata(model))),
        "joiner": (JOINER, to_onnx(joiner, joiner.example_inputs(), JOINER,
                                   _batch_axes(["encoder_out", "decoder_out", "logit"]),
                                   joiner_metadata(model))),
    }


def _write(models: Dict[str, Tuple[OnnxContract, onnx.ModelProto]], tokens: Path,
           out_dir: Path, suffix: str, quantize: bool) -> Dict[str, TransducerFiles]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"fp32": TransducerFiles.in_dir(out_dir, suffix, "fp32")}
    for part, (_, model) in models.items():
        with atomic_output(getattr(files["fp32"], part)) as tmp:
            onnx.save(model, str(tmp))
    if Path(tokens).resolve() != files["fp32"].tokens.resolve():
        with atomic_output(files["fp32"].tokens) as tmp:
            shutil.copyfile(tokens, tmp)
    if quantize:
        files["int8"] = TransducerFiles.in_dir(out_dir, suffix, "int8")
        for part, (contract, model) in models.items():
            quantize_int8(getattr(files["fp32"], part), getattr(files["int8"], part), contract,
                          gather=(part == "decoder"))
    for precision, f in files.items():
        logging.info(f"{precision}: {f.encoder}, {f.decoder}, {f.joiner}, {f.tokens}")
    return files


@contextlib.contextmanager
def _root_log_level(level: int) -> Iterator[None]:
    """onnxruntime's quantiser logs a line per tensor (and a pre-processing hint) on the root
    logger; keep the recipe's log readable."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)


def quantize_int8(fp32_path: Path, int8_path: Path, contract: OnnxContract,
                  gather: bool = False) -> None:
    """Dynamic int8 quantisation of the MatMul weights (and the decoder's embedding,
    ``gather``), as icefall's export-onnx.py does; metadata is carried over and checked."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    metadata = {p.key: p.value for p in onnx.load(str(fp32_path)).metadata_props}
    with atomic_output(int8_path) as tmp:
        with _root_log_level(logging.ERROR):
            quantize_dynamic(str(fp32_path), str(tmp),
                             op_types_to_quantize=["MatMul", "Gather"] if gather else ["MatMul"],
                             weight_type=QuantType.QInt8)
        model = onnx.load(str(tmp))
        set_metadata(model, metadata)
        validate_graph(model, contract, str(int8_path))
        onnx.save(model, str(tmp))


def require_conformer(model: Transducer) -> None:
    """The streaming exporter writes sherpa-onnx's ``conformer`` contract; refuse another
    encoder with what to use instead, rather than failing inside tracing."""
    kind = model.config.encoder_kind
    if kind != "conformer":
        raise ValueError(f"export_streaming_onnx writes the Conformer's contract; export a "
                         f"streaming {kind} with icefall_kd.export.zipformer_onnx."
                         f"export_streaming_zipformer_onnx (sherpa-onnx zipformer2)")


def export_streaming_onnx(model: Transducer, out_dir: Path, suffix: str, chunk_size: int,
                          left_context: int, tokens: Path, quantize: bool = True,
                          extra_metadata: Optional[Mapping[str, str]] = None
                          ) -> Dict[str, TransducerFiles]:
    """Streaming student -> {"fp32": files, "int8": files}. ``extra_metadata`` is added to
    (and may override) the encoder's metadata; it is validated like the rest."""
    require_conformer(model)
    model = model.eval()
    encoder = StreamingEncoderForSherpa(model, chunk_size, left_context)
    metadata = {**streaming_encoder_metadata(model, chunk_size, left_context),
                **(extra_metadata or {})}
    validate_metadata(metadata, STREAMING_ENCODER)
    validate_metadata(decoder_metadata(model), DECODER)
    validate_tokens(tokens, model.config.vocab_size)
    axes = _batch_axes(["x", "processed_frames", "encoder_out"])
    states = ["cached_attn", "cached_conv", "new_cached_attn", "new_cached_conv"]
    axes.update(_batch_axes(states, axis=2))  # sherpa-onnx's states are batch-second
    models = {"encoder": (STREAMING_ENCODER, to_onnx(encoder, encoder.example_inputs(2),
                                                     STREAMING_ENCODER, axes, metadata))}
    models.update(_decoder_and_joiner(model))
    return _write(models, tokens, Path(out_dir), suffix, quantize)


def export_offline_onnx(model: Transducer, out_dir: Path, suffix: str, tokens: Path,
                        quantize: bool = True, extra_metadata: Optional[Mapping[str, str]] = None
                        ) -> Dict[str, TransducerFiles]:
    """Full-context model for sherpa-onnx's OfflineRecognizer -> {"fp32": .., "int8": ..};
    ``extra_metadata`` is added to the encoder's metadata."""
    model = model.eval()
    if model.causal:
        logging.warning("exporting a streaming (causal) model for full-context decoding")
    encoder = OfflineEncoderForSherpa(model)
    metadata = {**offline_encoder_metadata(model), **(extra_metadata or {})}
    contract = offline_encoder_contract(model.config.encoder_kind)
    validate_metadata(metadata, contract)
    validate_metadata(decoder_metadata(model), DECODER)
    validate_tokens(tokens, model.config.vocab_size)
    axes = {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "encoder_out": {0: "N", 1: "T"},
            "encoder_out_lens": {0: "N"}}
    models = {"encoder": (contract, to_onnx(encoder, encoder.example_inputs(), contract, axes,
                                            metadata))}
    models.update(_decoder_and_joiner(model))
    return _write(models, tokens, Path(out_dir), suffix, quantize)
