"""Chunk-by-chunk recognition of test sets from audio with a streaming transducer, with
latency against reference word times and the real-time factor.

Streams are decoded together (--num-decode-streams at a time); each takes its audio in
pieces of --piece-seconds, features are computed online (kaldi-native-fbank) and the
encoder runs chunk by chunk on cached states. Recordings at another sample rate are
resampled to 16 kHz first.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Optional, Sequence

import torch

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.data.fbank import SAMPLE_RATE
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
from icefall_kd.streaming.latency import (
    LatencySummary,
    utterance_record,
    write_latency_files,
)
from icefall_kd.streaming.recognizer import StreamingConfig, StreamingRecognizer
from icefall_kd.utils import HelpFormatter, setup_logging


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--chunk-size", type=int, default=8,
                        help="Chunk size in encoder frames (40 ms): 8 = 320 ms")
    parser.add_argument("--left-context", type=int, default=32,
                        help="Left context in encoder frames")
    parser.add_argument("--num-decode-streams", type=int, default=50,
                        help="Streams decoded together")
    parser.add_argument("--piece-seconds", type=float, default=0.1,
                        help="Audio arrives in pieces of this length")
    parser.add_argument("--num-threads", type=int, default=1,
                        help="CPU threads (the real-time factor is reported for this many)")
    add_search_arguments(parser, "<exp-dir>/streaming/<decoding-method>")
    DataConfig.add_arguments(parser, only=["manifest_dir"])  # audio is read from the cuts
    add_skip_existing_argument(parser)
    return parser


def streaming_suffix(args: argparse.Namespace) -> str:
    """The result files' name suffix (:class:`~icefall_kd.reporting.result_key.ResultKey`).
    It does not record --max-sym-per-frame (the names this script has always written)."""
    from icefall_kd.reporting.result_key import ResultKey

    beam = args.decoding_method == "modified_beam_search"
    return ResultKey(
        epoch=args.epoch, avg=args.avg, chunk_size=args.chunk_size,
        left_context=args.left_context, beam_size=args.beam_size if beam else None,
        use_averaged_model=args.use_averaged_model,
    ).to_suffix()


def decode_cuts(recognizer: StreamingRecognizer, cuts, sp, args):
    """Returns (results for the WER files, per-utterance records, processing seconds,
    audio seconds)."""
    results, records = [], []
    piece = int(args.piece_seconds * SAMPLE_RATE)
    processing = audio_seconds = 0.0
    batch = []

    def run(batch):
        nonlocal processing, audio_seconds
        audios = [c.load_audio()[0] for c in batch]
        started = time.perf_counter()
        streams = recognizer.recognize(audios, [c.id for c in batch], piece)
        processing += time.perf_counter() - started
        for cut, audio, stream in zip(batch, audios, streams):
            audio_seconds += len(audio) / SAMPLE_RATE
            first = (stream.token_available_samples[0] / SAMPLE_RATE
                     if stream.token_available_samples else None)
            record = utterance_record(cut, sp, stream.hyp, first)
            results.append((cut.id, record["ref_words"], record["hyp_words"]))
            records.append(record)

    for cut in cuts:
        if cut.sampling_rate != SAMPLE_RATE:
            cut = cut.resample(SAMPLE_RATE)
        batch.append(cut)
        if len(batch) == args.num_decode_streams:
            run(batch)
            batch = []
    if batch:
        run(batch)
    return results, records, processing, audio_seconds


def main(description: str = "", argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser(description or __doc__).parse_args(argv)
    torch.set_num_threads(args.num_threads)
    res_dir = args.res_dir or args.exp_dir / "streaming" / args.decoding_method
    res_dir.mkdir(parents=True, exist_ok=True)
    suffix = streaming_suffix(args)
    setup_logging()
    data = AsrDataModule(DataConfig.from_args(args))
    if args.skip_existing and results_up_to_date(args, data, res_dir, suffix):
        logging.info(f"{res_dir}: results for {suffix} exist and are newer than the model and "
                     "the test cuts; skipped (--skip-existing; the real-time factor is the one "
                     "measured when they were made)")
        return
    log_to_file(res_dir, suffix, "log-streaming-decode")
    model = load_model(args)
    if not model.causal:
        raise SystemExit(f"{args.exp_dir}: a full-context model cannot decode chunk by chunk; "
                         "use decode.py for it (streaming_decode.py needs a streaming model)")
    recognizer = StreamingRecognizer(model, StreamingConfig(
        args.chunk_size, args.left_context, args.decoding_method, args.max_sym_per_frame,
        args.beam_size))
    sp = load_bpe(args.lang_dir)
    for test_set in args.test_sets.split():
        results, records, processing, audio = decode_cuts(recognizer, data.cuts(test_set), sp, args)
        write_result_files(res_dir, test_set, suffix, args.decoding_method, results)
        summary = write_latency_files(res_dir, test_set, suffix, records,
                                      {"real_time_factor": processing / max(audio, 1e-9),
                                       "num_threads": args.num_threads})
        logging.info(
            f"[{test_set}] first token {LatencySummary(**summary['first_token_latency'])}; "
            f"symbol delay {LatencySummary(**summary['symbol_delay'])}; "
            f"RTF {summary['real_time_factor']:.3f} on {args.num_threads} thread(s)"
        )
