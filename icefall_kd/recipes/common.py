"""Argument groups and builders that several recipe scripts share."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import sentencepiece as spm

from icefall_kd.model.transducer import PRESETS, Transducer, build_transducer


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model-preset", choices=sorted(PRESETS), default="default",
                   help="Model size: tiny (tests), default (embedded corpus on CPU), "
                   "paper (LibriSpeech 960 h on GPUs)")
    g.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"),
                   help="Folder with bpe.model and tokens.txt")
    g.add_argument("--dropout", type=float, default=None,
                   help="Override the preset's dropout")


def load_bpe(lang_dir: Path) -> spm.SentencePieceProcessor:
    path = Path(lang_dir) / "bpe.model"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run prepare.sh (stage 3) or pass --lang-dir")
    return spm.SentencePieceProcessor(model_file=str(path))


def new_model(args: argparse.Namespace, sp: spm.SentencePieceProcessor, causal: bool) -> Transducer:
    model = build_transducer(args.model_preset, sp.get_piece_size(), causal, args.dropout)
    num_params = sum(p.numel() for p in model.parameters())
    logging.info(f"model: preset {args.model_preset}, causal={causal}, {num_params / 1e6:.2f} M parameters")
    return model
