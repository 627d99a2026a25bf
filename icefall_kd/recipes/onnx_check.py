"""Compare exported ONNX files with the PyTorch model they came from (onnxruntime, one
thread): encoder over several chunks with carried states (streaming) or a padded batch
(offline), decoder and joiner. Exits with status 1 when a difference exceeds --tolerance.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from icefall_kd.export.onnx_parity import (
    DEFAULT_TOLERANCE,
    OnnxCheckResult,
    check_offline_onnx,
    check_streaming_onnx,
)
from icefall_kd.export.onnx_export import PRECISIONS, TransducerFiles
from icefall_kd.export.zipformer_onnx import check_streaming_zipformer_onnx
from icefall_kd.recipes.common import add_checkpoint_arguments
from icefall_kd.recipes.export import add_streaming_arguments, export_suffix, load_model_for_export
from icefall_kd.utils import HelpFormatter, setup_logging


def build_parser(description: str, streaming: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--onnx-dir", type=Path, default=None,
                        help="Folder with the exported files; default: --exp-dir")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="Which files to check; int8 differs by quantisation error, so "
                        "give it a looser --tolerance")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="Largest allowed absolute difference")
    parser.add_argument("--num-chunks", type=int, default=6,
                        help="Streaming: chunks run with carried states")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random inputs")
    if streaming:
        add_streaming_arguments(parser)
    return parser


def main(streaming: bool, description: str = "",
         argv: Optional[Sequence[str]] = None) -> OnnxCheckResult:
    args = build_parser(description or __doc__, streaming).parse_args(argv)
    setup_logging()
    model = load_model_for_export(args, streaming)
    files = TransducerFiles.in_dir(args.onnx_dir or args.exp_dir, export_suffix(args, streaming),
                                   args.precision)
    if streaming and model.config.encoder_kind == "zipformer":
        result = check_streaming_zipformer_onnx(model, files, args.num_chunks, seed=args.seed,
                                                tolerance=args.tolerance)
    elif streaming:
        result = check_streaming_onnx(model, files, args.num_chunks, seed=args.seed,
                                      tolerance=args.tolerance)
    else:
        result = check_offline_onnx(model, files, seed=args.seed, tolerance=args.tolerance)
    logging.info(f"{files.encoder.name}: {result}")
    if not result.ok:
        raise SystemExit(1)
    return result
