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

from icefall_kd.export.onnx_parity import DEFAULT_TOLERANCE, check_offline_onnx, check_streaming_onnx
from icefall_kd.export.onnx_export import (
    TransducerFiles,
    export_offline_onnx,
    export_streaming_onnx,
)
from icefall_kd.recipes.common import add_checkpoint_arguments
from icefall_kd.recipes.export import add_streaming_arguments, export_suffix, load_model_for_export
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


def main(streaming: bool, description: str = "",
         argv: Optional[Sequence[str]] = None) -> Dict[str, TransducerFiles]:
    args = build_parser(description or __doc__, streaming).parse_args(argv)
    setup_logging()
    model = load_model_for_export(args, streaming)
    out_dir = args.output_dir or args.exp_dir
    suffix = export_suffix(args, streaming)
    tokens = args.lang_dir / "tokens.txt"
    if streaming:
        files = export_streaming_onnx(model, out_dir, suffix, args.chunk_size, args.left_context,
                                      tokens, quantize=args.int8)
        result = check_streaming_onnx(model, files["fp32"])
    else:
        files = export_offline_onnx(model, out_dir, suffix, tokens, quantize=args.int8)
        result = check_offline_onnx(model, files["fp32"])
    logging.info(f"fp32 check: {result}")
    if not result.ok:
        raise SystemExit(f"exported fp32 model differs from PyTorch by more than "
                         f"{DEFAULT_TOLERANCE}: {result}")
    return files
