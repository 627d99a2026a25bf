"""Argument groups, builders and result writers that several recipe scripts share."""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path
from typing import List, Optional, Tuple

import sentencepiece as spm

from icefall_kd.decoding.wer import write_error_stats, write_recogs
from icefall_kd.model.transducer import PRESETS, Transducer, build_transducer
from icefall_kd.data.vocabulary import VocabularyMismatch, check_vocabulary, vocabulary_of_lang_dir
from icefall_kd.training.checkpoint import CheckpointError, load_transducer_and_vocabulary
from icefall_kd.utils import str2bool


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model-preset", choices=sorted(PRESETS), default="default",
                   help="Model size: tiny (tests), default (embedded corpus on CPU), "
                   "paper (LibriSpeech 960 h on GPUs); zipformer-tiny, zipformer-small, "
                   "zipformer-paper: the same with a Zipformer encoder")
    g.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"),
                   help="Folder with bpe.model and tokens.txt")
    g.add_argument("--dropout", type=float, default=None,
                   help="Override the preset's dropout")


def load_bpe(lang_dir: Path) -> spm.SentencePieceProcessor:
    path = Path(lang_dir) / "bpe.model"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run prepare.sh (stage 3) or pass --lang-dir")
    return spm.SentencePieceProcessor(model_file=str(path))


def new_model(args: argparse.Namespace, sp: spm.SentencePieceProcessor, causal: bool,
              conv_context: str = "causal") -> Transducer:
    model = build_transducer(args.model_preset, sp.get_piece_size(), causal, args.dropout,
                             conv_context)
    num_params = sum(p.numel() for p in model.parameters())
    logging.info(f"model: preset {args.model_preset}, causal={causal}"
                 f"{f', conv_context={conv_context}' if causal else ''}, "
                 f"{num_params / 1e6:.2f} M parameters")
    return model


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--epoch", type=int, required=True, help="Use epoch-<N>.pt ...")
    parser.add_argument("--avg", type=int, default=1,
                        help="... averaged over the last --avg epochs ending at --epoch")
    parser.add_argument("--use-averaged-model", type=str2bool, default=True,
                        help="Average with the running averaged model (icefall's method) "
                        "instead of a plain mean of epoch checkpoints")


def add_search_arguments(parser: argparse.ArgumentParser, res_dir_default: str) -> None:
    """Search, vocabulary, test sets and output folder: shared by decode.py and
    streaming_decode.py (each adds the data flags it uses)."""
    parser.add_argument("--decoding-method", choices=["greedy_search", "modified_beam_search"],
                        default="greedy_search")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--max-sym-per-frame", type=int, default=1,
                        help="Greedy search: symbols per 40 ms frame at most (sherpa-onnx's "
                        "streaming greedy search emits at most 1)")
    parser.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"))
    parser.add_argument("--test-sets", default="dev-clean test-clean test-other")
    parser.add_argument("--res-dir", type=Path, default=None,
                        help=f"Default: {res_dir_default}")


def add_skip_existing_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-existing", type=str2bool, default=False,
                        help="Do nothing when every test set already has its wer-summary file "
                        "for these settings, newer than the checkpoint and the test cuts "
                        "(reruns of a run.sh stage redo only what is missing or out of date)")


def results_up_to_date(args: argparse.Namespace, data, res_dir: Path, suffix: str) -> bool:
    """Whether every test set's WER summary exists and is newer than the checkpoint and the
    test cuts (as make decides), so regenerated data or a retrained model are decoded again.
    ``data`` is the script's AsrDataModule (its ``cuts_path``)."""
    checkpoint = args.exp_dir / f"epoch-{args.epoch}.pt"
    for test_set in args.test_sets.split():
        summary = res_dir / f"wer-summary-{test_set}-{suffix}.txt"
        inputs = [checkpoint, data.cuts_path(test_set)]
        if not summary.is_file() or any(
            p.is_file() and p.stat().st_mtime >= summary.stat().st_mtime for p in inputs
        ):
            return False
    return True


def load_checked_transducer(exp_dir: Path, epoch: int, avg: int,
                            use_averaged_model: bool = True,
                            lang_dir: Optional[Path] = None) -> Transducer:
    """:func:`load_transducer`, with a missing, damaged or unfit checkpoint reported as a
    one-line message naming the file (no traceback). With ``lang_dir``, also refuses a
    vocabulary other than the one the model was trained with (see
    :mod:`icefall_kd.data.vocabulary`)."""
    try:
        model, vocabulary, path = load_transducer_and_vocabulary(exp_dir, epoch, avg,
                                                                 use_averaged_model)
        if lang_dir is not None:
            check_vocabulary(vocabulary, str(path), vocabulary_of_lang_dir(lang_dir),
                             model.config.vocab_size)
    except (FileNotFoundError, CheckpointError, VocabularyMismatch) as error:
        raise SystemExit(f"error: {error}") from None
    return model


def load_model(args: argparse.Namespace) -> Transducer:
    """The model --exp-dir/--epoch/--avg/--use-averaged-model name, in eval mode, checked
    against --lang-dir where the script has one."""
    return load_checked_transducer(args.exp_dir, args.epoch, args.avg, args.use_averaged_model,
                                   getattr(args, "lang_dir", None)).eval()


def write_result_files(res_dir: Path, test_set: str, suffix: str, method: str,
                       results: List[Tuple[str, List[str], List[str]]]):
    """recogs-, errs- and wer-summary- files for one test set; logs icefall's WER line."""
    write_recogs(res_dir / f"recogs-{test_set}-{suffix}.txt", results)
    stats = write_error_stats(res_dir / f"errs-{test_set}-{suffix}.txt", f"{test_set}-{suffix}",
                              results)
    with open(res_dir / f"wer-summary-{test_set}-{suffix}.txt", "w") as f:
        f.write(f"settings\tWER\n{method}\t{stats.wer:.2f}\n")
    logging.info(
        f"[{test_set}-{method}] %WER {stats.wer:.2f}% [{stats.errors} / {stats.ref_words}, "
        f"{stats.insertions} ins, {stats.deletions} del, {stats.substitutions} sub ]"
    )
    return stats


def log_to_file(res_dir: Path, suffix: str, name: str = "log-decode") -> None:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    handler = logging.FileHandler(res_dir / f"{name}-{suffix}-{stamp}")
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)
