"""Export an averaged model to ONNX for sherpa-onnx (fp32 and int8) with tokens.txt, then
check the fp32 files against PyTorch.

Streaming student: OnlineRecognizer's ``conformer`` model type, a fixed chunk and left
context. Full-context teacher: OfflineRecognizer's transducer.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Dict, Optional, Sequence

from icefall_kd.data.vocabulary import (
    ONNX_METADATA_KEY,
    Vocabulary,
    VocabularyMismatch,
    check_vocabulary,
    vocabulary_of_tokens,
)
from icefall_kd.export.onnx_parity import DEFAULT_TOLERANCE, check_offline_onnx, check_streaming_onnx
from icefall_kd.export.onnx_export import (
    TransducerFiles,
    export_offline_onnx,
    export_streaming_onnx,
)
from icefall_kd.export.zipformer_onnx import (
    check_streaming_zipformer_onnx,
    export_streaming_zipformer_onnx,
)
from icefall_kd.recipes.common import add_checkpoint_arguments
from icefall_kd.model.transducer import Transducer
from icefall_kd.recipes.export import add_streaming_arguments, export_suffix, load_model_for_export
from icefall_kd.training.checkpoint import saved_vocabulary
from icefall_kd.utils import HelpFormatter, setup_logging, str2bool


def build_parser(description: str, streaming: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"),
                        help="Folder with the tokens.txt the model was trained with")
    parser.add_argument("--output-dir", type=Path, default=None, help="Default: --exp-dir")
    parser.add_argument("--int8", type=str2bool, default=True,
                        help="Also write dynamic-quantised *.int8.onnx files")
    if streaming:
        add_streaming_arguments(parser)
    return parser


def bound_vocabulary(args: argparse.Namespace, model: Transducer, tokens: Path) -> Vocabulary:
    """The vocabulary of the ``tokens.txt`` that will ship beside the ONNX files, refused
    (SystemExit naming both files) unless it is the one the checkpoint was trained with."""
    checkpoint = args.exp_dir / f"epoch-{args.epoch}.pt"
    if not tokens.is_file():
        raise SystemExit(f"error: {tokens} not found: pass the --lang-dir the model was "
                         "trained with (prepare.sh stage 3 writes it)")
    table = vocabulary_of_tokens(tokens)
    try:
        check_vocabulary(saved_vocabulary(checkpoint), str(checkpoint), table,
                         model.config.vocab_size)
    except VocabularyMismatch as error:
        raise SystemExit(f"error: {error}") from None
    return table


def main(streaming: bool, description: str = "",
         argv: Optional[Sequence[str]] = None) -> Dict[str, TransducerFiles]:
    args = build_parser(description or __doc__, streaming).parse_args(argv)
    setup_logging()
    model = load_model_for_export(args, streaming)
    zipformer = model.config.encoder_kind == "zipformer"
    out_dir = args.output_dir or args.exp_dir
    suffix = export_suffix(args, streaming)
    tokens = args.lang_dir / "tokens.txt"
    metadata = {ONNX_METADATA_KEY: bound_vocabulary(args, model, tokens).to_metadata()}
    if streaming and zipformer:
        files = export_streaming_zipformer_onnx(model, out_dir, suffix, args.chunk_size,
                                                args.left_context, tokens, quantize=args.int8,
                                                extra_metadata=metadata)
        result = check_streaming_zipformer_onnx(model, files["fp32"])
    elif streaming:
        files = export_streaming_onnx(model, out_dir, suffix, args.chunk_size, args.left_context,
                                      tokens, quantize=args.int8, extra_metadata=metadata)
        result = check_streaming_onnx(model, files["fp32"])
    else:
        files = export_offline_onnx(model, out_dir, suffix, tokens, quantize=args.int8,
                                    extra_metadata=metadata)
        result = check_offline_onnx(model, files["fp32"])
    logging.info(f"fp32 check: {result}")
    if not result.ok:
        raise SystemExit(f"exported fp32 model differs from PyTorch by more than "
                         f"{DEFAULT_TOLERANCE}: {result}")
    return files
