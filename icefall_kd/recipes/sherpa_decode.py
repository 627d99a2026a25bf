"""Decode test sets with sherpa-onnx on the exported files (fp32 and int8), write icefall's
result files, and compare with PyTorch greedy search.

Streaming: OnlineRecognizer, greedy search, audio plus one window of tail padding. Offline:
OfflineRecognizer. sherpa-onnx runs in a child process (it ends the process on a bad
model). For each test set and precision: recogs-, errs-, wer-summary- files and
sherpa-summary-<set>-<suffix>.json with the WER, the share of utterances identical to
PyTorch, and the real-time factor on --num-threads threads.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import onnx

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.data.fbank import SAMPLE_RATE
from icefall_kd.data.vocabulary import (
    ONNX_METADATA_KEY,
    Vocabulary,
    VocabularyMismatch,
    check_vocabulary,
    vocabulary_of_lang_dir,
    vocabulary_of_tokens,
)
from icefall_kd.export.zipformer_onnx import check_streaming_encoder_file
from icefall_kd.export.onnx_export import PRECISIONS, TransducerFiles
from icefall_kd.export.sherpa_parity import (
    by_id,
    identical_share,
    pytorch_offline,
    pytorch_sherpa_schedule,
    pytorch_streaming_decode,
    sherpa_decode_cuts,
    tail_padding_samples,
)
from icefall_kd.recipes.common import (
    add_checkpoint_arguments,
    load_bpe,
    log_to_file,
    write_result_files,
)
from icefall_kd.recipes.export import add_streaming_arguments, export_suffix, load_model_for_export
from icefall_kd.streaming.recognizer import StreamingConfig
from icefall_kd.utils import HelpFormatter, setup_logging, str2bool


def build_parser(description: str, streaming: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    if streaming:
        add_streaming_arguments(parser)
        parser.add_argument("--num-decode-streams", type=int, default=16,
                            help="Streams decoded together (sherpa-onnx and PyTorch)")
    parser.add_argument("--onnx-dir", type=Path, default=None,
                        help="Folder with the exported files; default: --exp-dir")
    parser.add_argument("--precisions", default="fp32 int8",
                        help=f"Space-separated, from {' '.join(PRECISIONS)}")
    parser.add_argument("--num-threads", type=int, default=1,
                        help="sherpa-onnx threads (the real-time factor is for this many)")
    parser.add_argument("--blank-penalty", type=float, default=0.0,
                        help="Subtracted from the blank logit by sherpa-onnx; PyTorch search "
                        "has none, so the comparison assumes 0")
    parser.add_argument("--compare-with-pytorch", type=str2bool, default=True,
                        help="Also decode with PyTorch greedy search and report the share of "
                        "identical hypotheses (needs the checkpoint)")
    parser.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"),
                        help="Folder with the bpe.model the model was trained with (turns "
                        "token ids into words)")
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"),
                        help="Folder with librispeech_cuts_<part>.jsonl.gz (audio is read "
                        "from their recordings)")
    parser.add_argument("--test-sets", default="dev-clean test-clean test-other",
                        help="Space-separated parts under --manifest-dir")
    parser.add_argument("--res-dir", type=Path, default=None,
                        help="Default: <exp-dir>/sherpa-onnx/greedy_search")
    parser.add_argument("--timeout", type=float, default=36000.0,
                        help="Seconds sherpa-onnx may take per test set and precision")
    return parser


def result_suffix(args: argparse.Namespace, streaming: bool, precision: str) -> str:
    """decode.py's naming (underscores) plus the precision."""
    suffix = f"epoch-{args.epoch}_avg-{args.avg}"
    if streaming:
        suffix += f"_chunk-{args.chunk_size}_left-context-{args.left_context}"
    suffix += f"_{precision}"
    if args.use_averaged_model:
        suffix += "_use-averaged-model"
    return suffix


def check_exported_vocabulary(files: TransducerFiles, lang_dir: Path) -> None:
    """Refuses (SystemExit naming both files) a ``tokens.txt`` beside the ONNX files, or a
    --lang-dir, other than the vocabulary the export recorded: sherpa-onnx turns ids into
    text through the first, this script through the second, and neither can tell."""
    if not files.encoder.is_file():
        raise SystemExit(f"error: {files.encoder} not found: run export_onnx.py first, or "
                         "fix --onnx-dir/--epoch/--avg")
    def metadata(path: Path) -> dict:
        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}

    recorded = Vocabulary.from_metadata(metadata(files.encoder).get(ONNX_METADATA_KEY),
                                        str(files.encoder))
    size = int(metadata(files.decoder)["vocab_size"]) if files.decoder.is_file() else None
    try:
        shipped = vocabulary_of_tokens(files.tokens)
        check_vocabulary(recorded, str(files.encoder), shipped, size,
                         remedy="export again with the --lang-dir the model was trained with")
        check_vocabulary(recorded or shipped, str(files.encoder if recorded else files.tokens),
                         vocabulary_of_lang_dir(lang_dir), size,
                         remedy="pass the --lang-dir the model was trained with")
    except (FileNotFoundError, VocabularyMismatch) as error:
        raise SystemExit(f"error: {error}") from None


def pytorch_references(args, model, streaming: bool, ids: List[str],
                       audios) -> Dict[str, Dict[str, List[int]]]:
    if model is None:
        return {}
    if not streaming:
        return {"identical_to_pytorch": by_id(ids, pytorch_offline(model, audios))}
    config = StreamingConfig(args.chunk_size, args.left_context)
    return {
        "identical_to_pytorch": by_id(ids, pytorch_sherpa_schedule(
            model, config, audios, args.num_decode_streams)),
        "identical_to_streaming_decode": by_id(ids, pytorch_streaming_decode(
            model, config, audios, args.num_decode_streams)),
    }


def decode_test_set(args, streaming: bool, test_set: str, sp, model, res_dir: Path) -> List[dict]:
    """Every precision on one test set; returns the summaries written."""
    cuts_path = args.manifest_dir / f"librispeech_cuts_{test_set}.jsonl.gz"
    cuts = [c if c.sampling_rate == SAMPLE_RATE else c.resample(SAMPLE_RATE)
            for c in AsrDataModule(DataConfig(manifest_dir=args.manifest_dir)).cuts(test_set)]
    ids = [c.id for c in cuts]
    references = pytorch_references(args, model, streaming, ids,
                                    [c.load_audio()[0] for c in cuts] if model else [])
    summaries = []
    for precision in args.precisions.split():
        files = TransducerFiles.in_dir(args.onnx_dir or args.exp_dir,
                                       export_suffix(args, streaming), precision)
        check_exported_vocabulary(files, args.lang_dir)
        tail = 0
        if streaming:
            check_streaming_encoder_file(files.encoder)  # conformer or zipformer2
            tail = tail_padding_samples(StreamingConfig(args.chunk_size, args.left_context))
        decoded = sherpa_decode_cuts(
            files, str(cuts_path), "online" if streaming else "offline", args.num_threads,
            tail, getattr(args, "num_decode_streams", 1), args.blank_penalty, args.timeout)
        hyps = {u["id"]: u["token_ids"] for u in decoded["utterances"]}
        results = [(c.id, c.supervisions[0].text.split(), sp.decode(hyps[c.id]).split())
                   for c in cuts]
        suffix = result_suffix(args, streaming, precision)
        stats = write_result_files(res_dir, test_set, suffix, "greedy_search", results)
        summary = {
            "test_set": test_set, "precision": precision, "encoder": str(files.encoder),
            "num_utterances": len(cuts), "wer": round(stats.wer, 2),
            **{name: identical_share(hyps, ref) for name, ref in references.items()},
            "real_time_factor": decoded["real_time_factor"],
            "num_threads": decoded["num_threads"],
        }
        with open(res_dir / f"sherpa-summary-{test_set}-{suffix}.json", "w") as f:
            json.dump(summary, f, indent=2)
        logging.info(f"[{test_set} {precision}] " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in summary.items() if k not in ("test_set", "precision", "encoder")))
        summaries.append(summary)
    return summaries


def main(streaming: bool, description: str = "",
         argv: Optional[Sequence[str]] = None) -> List[dict]:
    args = build_parser(description or __doc__, streaming).parse_args(argv)
    res_dir = args.res_dir or args.exp_dir / "sherpa-onnx" / "greedy_search"
    res_dir.mkdir(parents=True, exist_ok=True)
    setup_logging()
    log_to_file(res_dir, result_suffix(args, streaming, "-".join(args.precisions.split())),
                "log-sherpa-decode")
    if args.blank_penalty != 0 and args.compare_with_pytorch:
        logging.warning("--blank-penalty is not applied to the PyTorch reference")
    model = load_model_for_export(args, streaming) if args.compare_with_pytorch else None
    sp = load_bpe(args.lang_dir)
    summaries = []
    for test_set in args.test_sets.split():
        summaries += decode_test_set(args, streaming, test_set, sp, model, res_dir)
    return summaries
