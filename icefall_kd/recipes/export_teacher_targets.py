"""Run the frozen teacher once over cut sets and store its hidden states with the cuts
(lhotse custom array fields ``teacher_hidden_<layer>``), for distillation with
``--teacher-targets exported --manifest-dir <output-dir>``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch
from lhotse import CutSet

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.distill.teacher import FrozenTeacher, export_teacher_targets
from icefall_kd.recipes.common import add_checkpoint_arguments, load_checked_transducer
from icefall_kd.training.transducer_objective import parse_int_list
from icefall_kd.utils import HelpFormatter, setup_logging, write_manifest


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--parts", default="train-clean-100 dev-clean",
                        help="Cut sets to export: the training parts and the validation part")
    parser.add_argument("--layers", default="-1",
                        help="Teacher layers to store, 0-based, -1 = encoder output (what "
                        "--hidden-kd-layers and the output KD need)")
    parser.add_argument("--output-dir", type=Path, default=Path("data/teacher_targets"),
                        help="Cut manifests (same names as in --manifest-dir) and arrays")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16",
                        help="Storage precision: float16 halves the disk space (relative "
                        "error about 5e-4)")
    DataConfig.add_arguments(parser, only=DataConfig.EVAL_FIELDS)
    return parser


def main(description: str = "", argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser(description or __doc__).parse_args(argv)
    setup_logging()
    if args.output_dir.resolve() == args.manifest_dir.resolve():
        raise SystemExit("--output-dir must differ from --manifest-dir (the source manifests "
                         "would be overwritten)")
    teacher = FrozenTeacher(load_checked_transducer(args.exp_dir, args.epoch, args.avg,
                                            args.use_averaged_model))
    data = AsrDataModule(DataConfig.from_args(args))
    layers = parse_int_list(args.layers)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    for part in args.parts.split():
        cuts = data.cuts(part)
        loader = data.eval_dataloader(cuts)
        out = args.output_dir / f"librispeech_cuts_{part}.jsonl.gz"
        exported = list(export_teacher_targets(teacher, loader, layers,
                                               args.output_dir / f"arrays_{part}", args.dtype))
        write_manifest(CutSet.from_cuts(exported), out)
        logging.info(f"{part}: teacher layers {layers} of {len(exported)} cuts -> {out}")
