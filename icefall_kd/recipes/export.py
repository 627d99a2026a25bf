"""Export an averaged model: ``pretrained.pt`` (weights and config), or with ``--jit`` one
TorchScript file with the encoder, decoder and joiner (see icefall_kd.export.torchscript).

Also the argument helpers the other export scripts share.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from icefall_kd.export.torchscript import compare_with_eager, save_torchscript, to_torchscript
from icefall_kd.model.transducer import Transducer
from icefall_kd.recipes.common import add_checkpoint_arguments, load_model
from icefall_kd.training.checkpoint import save_checkpoint, saved_vocabulary
from icefall_kd.utils import HelpFormatter, setup_logging, str2bool

# Traced/scripted vs eager on CPU: the same kernels, so differences are ~0.
JIT_TOLERANCE = 1e-5


def add_streaming_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("streaming", "The chunk the exported encoder runs")
    g.add_argument("--chunk-size", type=int, default=8,
                   help="Chunk size in encoder frames (40 ms): 8 = 320 ms")
    g.add_argument("--left-context", type=int, default=32,
                   help="Left context in encoder frames (the attention cache length)")


def export_suffix(args: argparse.Namespace, streaming: bool) -> str:
    """icefall's file naming: epoch-E-avg-A[-chunk-C-left-L]."""
    suffix = f"epoch-{args.epoch}-avg-{args.avg}"
    if streaming:
        suffix += f"-chunk-{args.chunk_size}-left-{args.left_context}"
    return suffix


def load_model_for_export(args: argparse.Namespace, streaming: bool) -> Transducer:
    """The averaged model of --exp-dir/--epoch/--avg; refuses the wrong kind of model."""
    model = load_model(args)
    if streaming and not model.causal:
        raise SystemExit(f"{args.exp_dir} holds a full-context model; export it with "
                         "transducer_teacher's scripts (offline)")
    if not streaming and model.causal:
        raise SystemExit(f"{args.exp_dir} holds a streaming model; export it with "
                         "transducer_streaming's scripts")
    return model


def build_parser(description: str, streaming: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--jit", type=str2bool, default=False,
                        help="Write a TorchScript file instead of pretrained.pt")
    parser.add_argument("--output-dir", type=Path, default=None, help="Default: --exp-dir")
    if streaming:
        add_streaming_arguments(parser)
    return parser


def main(streaming: bool, description: str = "", argv: Optional[Sequence[str]] = None) -> Path:
    args = build_parser(description or __doc__, streaming).parse_args(argv)
    setup_logging()
    out_dir = args.output_dir or args.exp_dir
    model = load_model_for_export(args, streaming)
    if not args.jit:
        path = out_dir / "pretrained.pt"
        # Loadable as epoch-99.pt with decode.py --epoch 99 --avg 1 --use-averaged-model false.
        vocabulary = saved_vocabulary(args.exp_dir / f"epoch-{args.epoch}.pt")
        save_checkpoint(path, {"model": model.state_dict(), "model_config": model.config.to_dict(),
                               "vocabulary": vocabulary.to_dict() if vocabulary else None})
        logging.info(f"wrote {path}")
        return path
    chunk = args.chunk_size if streaming else -1
    left = args.left_context if streaming else -1
    jit_model = to_torchscript(model, chunk, left)
    diffs = compare_with_eager(jit_model, model)
    logging.info(f"TorchScript vs eager, max abs difference: {diffs}")
    if max(diffs.values()) > JIT_TOLERANCE:
        raise SystemExit(f"TorchScript differs from eager by more than {JIT_TOLERANCE}: {diffs}")
    path = out_dir / f"jit-{export_suffix(args, streaming)}.pt"
    save_torchscript(jit_model, path)
    logging.info(f"wrote {path}")
    return path
