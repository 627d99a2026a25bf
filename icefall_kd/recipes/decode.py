"""Decode test sets with a trained transducer and write icefall's result files.

Full-context, or simulated streaming (``--chunk-size``/``--left-context``: whole utterances
with the chunked attention masks a streaming model was trained with).
"""

from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

import torch

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.decoding.search import greedy_search, modified_beam_search
from icefall_kd.data.fbank import SAMPLE_RATE
from icefall_kd.model.subsampling import SUBSAMPLING_FACTOR, SUBSAMPLING_LOOKAHEAD_FRAMES
from icefall_kd.model.transducer import Transducer
from icefall_kd.recipes.common import (
    add_checkpoint_arguments,
    add_search_arguments,
    add_skip_existing_argument,
    load_bpe,
    load_model,
    log_to_file,
    results_up_to_date,
    write_result_files,
)
from icefall_kd.streaming.latency import utterance_record, write_latency_files
from icefall_kd.streaming.recognizer import FRAME_END_OFFSET_SAMPLES, FRAME_SHIFT_SAMPLES
from icefall_kd.utils import HelpFormatter, setup_logging


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--chunk-size", type=int, default=-1,
                        help="Simulated streaming: chunk size in encoder frames (40 ms); "
                        "-1 = full context")
    parser.add_argument("--left-context", type=int, default=-1,
                        help="Simulated streaming: left context in encoder frames")
    add_search_arguments(parser, "<exp-dir>/<decoding-method>")
    DataConfig.add_arguments(parser, only=DataConfig.EVAL_FIELDS)
    add_skip_existing_argument(parser)
    return parser


def result_suffix(args: argparse.Namespace) -> str:
    """The result files' name suffix (:class:`~icefall_kd.reporting.result_key.ResultKey`)."""
    from icefall_kd.reporting.result_key import ResultKey

    streaming, beam = args.chunk_size > 0, args.decoding_method == "modified_beam_search"
    return ResultKey(
        epoch=args.epoch, avg=args.avg,
        chunk_size=args.chunk_size if streaming else None,
        left_context=args.left_context if streaming else None,
        beam_size=args.beam_size if beam else None,
        max_sym_per_frame=1 if beam else args.max_sym_per_frame,
        use_averaged_model=args.use_averaged_model,
    ).to_suffix()


def first_token_seconds(hyp, duration: float, chunk_size: int) -> Optional[float]:
    """When the first token is available. Full context: only after the whole utterance.
    Simulated streaming: once the audio of its chunk, look-ahead included, has arrived
    (the same rule as chunk-wise recognition)."""
    if not hyp.timestamps:
        return None
    if chunk_size <= 0:
        return duration
    chunk = hyp.timestamps[0] // chunk_size
    last_frame = (chunk + 1) * chunk_size * SUBSAMPLING_FACTOR + SUBSAMPLING_LOOKAHEAD_FRAMES - 1
    samples = last_frame * FRAME_SHIFT_SAMPLES + FRAME_END_OFFSET_SAMPLES
    return min(samples / SAMPLE_RATE, duration)


@torch.no_grad()
def decode_dataset(model: Transducer, loader, sp, args):
    """Returns (results for the WER files, per-utterance latency records)."""
    results, records = [], []
    for batch in loader:
        features = batch["inputs"]
        feature_lens = batch["supervisions"]["num_frames"]
        encoder_out, encoder_lens = model.encoder(features, feature_lens, args.chunk_size,
                                                  args.left_context)
        if args.decoding_method == "greedy_search":
            hyps = greedy_search(model, encoder_out, encoder_lens, args.max_sym_per_frame)
        else:
            hyps = modified_beam_search(model, encoder_out, encoder_lens, args.beam_size)
        for cut, hyp in zip(batch["supervisions"]["cut"], hyps):
            record = utterance_record(cut, sp, hyp,
                                      first_token_seconds(hyp, cut.duration, args.chunk_size))
            results.append((cut.id, record["ref_words"], record["hyp_words"]))
            records.append(record)
    return results, records


def main(description: str = "", argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser(description or __doc__).parse_args(argv)
    res_dir = args.res_dir or args.exp_dir / args.decoding_method
    res_dir.mkdir(parents=True, exist_ok=True)
    suffix = result_suffix(args)
    setup_logging()
    data = AsrDataModule(DataConfig.from_args(args))
    if args.skip_existing and results_up_to_date(args, data, res_dir, suffix):
        logging.info(f"{res_dir}: results for {suffix} exist and are newer than the model and "
                     "the test cuts; skipped (--skip-existing)")
        return
    log_to_file(res_dir, suffix)
    model = load_model(args)
    if args.chunk_size > 0 and not model.causal:
        raise SystemExit("--chunk-size needs a streaming model; this one is full-context")
    sp = load_bpe(args.lang_dir)
    for test_set in args.test_sets.split():
        results, records = decode_dataset(model, data.eval_dataloader(data.cuts(test_set)), sp, args)
        write_result_files(res_dir, test_set, suffix, args.decoding_method, results)
        write_latency_files(res_dir, test_set, suffix, records)
