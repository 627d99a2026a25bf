"""What sherpa-onnx requires of exported transducer files, and a checker that refuses
files that break it (before they are written, and again before they are used).

Facts from sherpa-onnx's source (k2-fsa/sherpa-onnx, ``sherpa-onnx/csrc``):

- ``online-transducer-model.cc``: the online model class is chosen from the encoder's
  metadata ``model_type`` (``conformer`` here); without it recognition fails.
- ``online-conformer-transducer-model.cc``: reads the encoder metadata ``num_encoder_layers``,
  ``T``, ``decode_chunk_len``, ``left_context``, ``encoder_dim``, ``pad_length``,
  ``cnn_module_kernel`` and the decoder metadata ``vocab_size``, ``context_size``; binds
  inputs **by position**: ``(x, cached_attn, cached_conv, processed_frames)`` ->
  ``(encoder_out, new_cached_attn, new_cached_conv)``; initial states are zeros of shape
  ``(num_encoder_layers, left_context, 1, encoder_dim)`` and
  ``(num_encoder_layers, cnn_module_kernel - 1, 1, encoder_dim)``, batched along dim 2.
- ``online-recognizer-transducer-impl.h``: feeds ``T`` feature frames, advances
  ``decode_chunk_len`` frames, runs a stream only when ``processed + T < frames_ready``;
  ``processed_frames`` is the number of 10 ms feature frames consumed before this call.
- ``offline-recognizer-impl.cc``: without a configured model type, the encoder's
  ``model_type`` (``conformer``, ``zipformer``, ``zipformer2``) selects the transducer
  recogniser; the offline encoder is ``(x, x_lens) -> (encoder_out, encoder_out_lens)``.
- Greedy search (``online-/offline-transducer-greedy-search-decoder.cc``): blank is id 0,
  the first decoder input is ``[-1] * (context_size - 1) + [0]``, the joiner gets one
  frame of ``encoder_out`` (so the encoder output must already be ``encoder_proj``-ected)
  and the decoder output, and ``<unk>`` is treated as blank.
- ``symbol-table.cc``: ``tokens.txt`` is read as whitespace-separated ``<symbol> <id>``
  pairs; a symbol's leading ``▁`` becomes a space in results.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

import onnx

FLOAT = "float32"
INT64 = "int64"
_ONNX_TYPES = {onnx.TensorProto.FLOAT: FLOAT, onnx.TensorProto.INT64: INT64}


class ExportContractError(ValueError):
    """An exported (or to be exported) file would not load or decode in sherpa-onnx."""


@dataclass(frozen=True)
class OnnxContract:
    """One ONNX file of a transducer: inputs and outputs in order (name, dtype), metadata
    keys that must hold integers, and metadata with a fixed value."""

    role: str
    inputs: Tuple[Tuple[str, str], ...]
    outputs: Tuple[str, ...]
    int_metadata: Tuple[str, ...] = ()
    fixed_metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def input_names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.inputs)


STREAMING_ENCODER = OnnxContract(
    role="streaming encoder",
    inputs=(("x", FLOAT), ("cached_attn", FLOAT), ("cached_conv", FLOAT),
            ("processed_frames", INT64)),
    outputs=("encoder_out", "new_cached_attn", "new_cached_conv"),
    int_metadata=("num_encoder_layers", "T", "decode_chunk_len", "left_context", "encoder_dim",
                  "pad_length", "cnn_module_kernel"),
    fixed_metadata={"model_type": "conformer"},
)

OFFLINE_ENCODER = OnnxContract(
    role="offline encoder",
    inputs=(("x", FLOAT), ("x_lens", INT64)),
    outputs=("encoder_out", "encoder_out_lens"),
    fixed_metadata={"model_type": "conformer"},
)
# The same for a full-context Zipformer; icefall's offline Zipformer exports say zipformer2
# (sherpa-onnx's offline transducer reads no encoder metadata).
OFFLINE_ZIPFORMER_ENCODER = dataclasses.replace(OFFLINE_ENCODER,
                                                fixed_metadata={"model_type": "zipformer2"})


def offline_encoder_contract(encoder_kind: str) -> OnnxContract:
    return OFFLINE_ZIPFORMER_ENCODER if encoder_kind == "zipformer" else OFFLINE_ENCODER


DECODER = OnnxContract(
    role="decoder",
    inputs=(("y", INT64),),
    outputs=("decoder_out",),
    int_metadata=("vocab_size", "context_size"),
)

JOINER = OnnxContract(
    role="joiner",
    inputs=(("encoder_out", FLOAT), ("decoder_out", FLOAT)),
    outputs=("logit",),
    int_metadata=("joiner_dim",),  # icefall's convention; sherpa-onnx does not read it
)


def validate_metadata(metadata: Mapping[str, str], contract: OnnxContract) -> None:
    """Raises :class:`ExportContractError` listing every missing or bad metadata entry."""
    problems: List[str] = []
    for key, value in contract.fixed_metadata.items():
        if key not in metadata:
            problems.append(f"missing metadata {key!r} (must be {value!r})")
        elif str(metadata[key]) != value:
            problems.append(f"metadata {key}={metadata[key]!r}, must be {value!r}")
    ints: Dict[str, int] = {}
    for key in contract.int_metadata:
        if key not in metadata:
            problems.append(f"missing metadata {key!r}")
            continue
        try:
            ints[key] = int(str(metadata[key]))
        except ValueError:
            problems.append(f"metadata {key}={metadata[key]!r} is not an integer")
            continue
        if ints[key] <= 0:
            problems.append(f"metadata {key}={ints[key]} must be positive")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            problems.append(f"metadata {key!r}: keys and values must be strings (ONNX "
                            f"metadata_props), got {type(value).__name__}")
    if contract is STREAMING_ENCODER and not problems:
        # sherpa-onnx feeds T frames and advances decode_chunk_len: the subsampling's
        # look-ahead (pad_length) must make up the difference, and a chunk must be a whole
        # number of 4x-subsampled encoder frames.
        if ints["T"] != ints["decode_chunk_len"] + ints["pad_length"]:
            problems.append(f"T={ints['T']} must equal decode_chunk_len + pad_length = "
                            f"{ints['decode_chunk_len'] + ints['pad_length']}")
        if ints["decode_chunk_len"] % 4:
            problems.append(f"decode_chunk_len={ints['decode_chunk_len']} must be a multiple "
                            "of the subsampling factor 4")
    if problems:
        raise ExportContractError(
            f"{contract.role}: refusing to export, sherpa-onnx would not load or run it:\n  "
            + "\n  ".join(problems)
        )


def onnx_metadata(model: onnx.ModelProto) -> Dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    """Adds or replaces ``metadata_props`` entries."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)


def validate_graph(model: onnx.ModelProto, contract: OnnxContract, name: str = "") -> None:
    """Input and output names, order and dtypes, and metadata of an ONNX model."""
    where = f"{name or contract.role}"
    initializers = {init.name for init in model.graph.initializer}
    inputs = [(i.name, _ONNX_TYPES.get(i.type.tensor_type.elem_type, "other"))
              for i in model.graph.input if i.name not in initializers]
    outputs = [o.name for o in model.graph.output]
    problems: List[str] = []
    if tuple(inputs) != contract.inputs:
        problems.append(
            f"inputs are {inputs}; sherpa-onnx binds them by position and needs "
            f"{list(contract.inputs)}"
        )
    if tuple(outputs) != contract.outputs:
        problems.append(f"outputs are {outputs}; needs {list(contract.outputs)}")
    if problems:
        raise ExportContractError(f"{where}: " + "; ".join(problems))
    try:
        validate_metadata(onnx_metadata(model), contract)
    except ExportContractError as error:
        raise ExportContractError(f"{where}: {error}") from None


def check_onnx_file(path: Path, contract: OnnxContract) -> Dict[str, str]:
    """Validates an existing file; returns its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ExportContractError(f"{path} does not exist")
    model = onnx.load(str(path), load_external_data=False)
    validate_graph(model, contract, str(path))
    return onnx_metadata(model)


def read_tokens(path: Path) -> Dict[str, int]:
    """``tokens.txt`` -> {symbol: id}, checking sherpa-onnx's format: one ``<symbol> <id>``
    a line, ids 0..V-1 each once, ``<blk>`` at 0 (sherpa-onnx's blank is always 0)."""
    path = Path(path)
    symbols: Dict[str, int] = {}
    ids = set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise ExportContractError(
                    f"{path}:{number}: expected '<symbol> <id>', got {line.rstrip()!r}")
            symbol, token_id = fields[0], int(fields[1])
            if symbol in symbols or token_id in ids:
                raise ExportContractError(f"{path}:{number}: duplicate symbol or id in {line!r}")
            symbols[symbol] = token_id
            ids.add(token_id)
    if ids != set(range(len(ids))):
        raise ExportContractError(f"{path}: ids must be 0..{len(ids) - 1} without gaps")
    if symbols.get("<blk>", 0) != 0 or 0 not in ids:
        raise ExportContractError(f"{path}: sherpa-onnx's blank is id 0; <blk> must be 0")
    return symbols


def sherpa_symbol(piece: str) -> str:
    """How sherpa-onnx spells a BPE piece in its results (leading ``▁`` -> space)."""
    return " " + piece[1:] if piece.startswith("\u2581") else piece


def validate_tokens(path: Path, vocab_size: int) -> Dict[str, int]:
    symbols = read_tokens(path)
    if len(symbols) != vocab_size:
        raise ExportContractError(
            f"{path} has {len(symbols)} tokens but the model's vocabulary has {vocab_size}; "
            "pass the --lang-dir the model was trained with"
        )
    return symbols
