#!/usr/bin/env python3
r"""Real-time factor of chunk-wise recognition from audio on one CPU thread, against
simulated streaming (whole utterances, masked attention) on the same utterances and model.

Usage (after run.sh has trained the baseline; from the repository root):
  .venv/bin/python benchmarks/bench_streaming_rtf.py --recipe-dir egs/librispeech/ASR \
      --exp-dir transducer_streaming/exp --epoch 4 --avg 2 [--utterances 100] \
      [--output benchmarks/results/streaming_rtf.md]
  # the Conformer baseline against the Zipformer one (run.sh --zipformer true), same run:
  .venv/bin/python benchmarks/bench_streaming_rtf.py --recipe-dir egs/librispeech/ASR \
      --exp-dir transducer_streaming/exp --epoch 6 --avg 2 \
      --compare transducer_streaming/exp-zipformer:3:2 \
      --output benchmarks/results/streaming_rtf_zipformer.md

RTF = processing seconds / audio seconds (greedy search, chunk 320 ms, left context 1.28 s,
audio fed in 0.1 s pieces, 50 streams decoded together, features included).

With --beside-another-job true, the chunk-wise pass is also timed while a second process runs
the same chunk-wise recognition on the other core, one thread each, as run.sh decodes two jobs
at a time (local/lanes.sh): what sharing caches and memory bandwidth costs its RTF figures.
The alone pass is timed before and after, so their difference shows the timing noise.

With --compare EXP:EPOCH:AVG (one or more), those models (a Zipformer, another preset) are
timed on the same utterances in the same process, one model after another, and
reported beside the --exp-dir model with their RTF relative to it.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from icefall_kd.data.fbank import SAMPLE_RATE, make_fbank_extractor
from icefall_kd.decoding.search import greedy_search
from icefall_kd.recipes.common import load_model
from icefall_kd.streaming.recognizer import StreamingConfig, StreamingRecognizer
from icefall_kd.utils import HelpFormatter, publish_report, str2bool


def parse_model(spec: str) -> tuple:
    """'EXP:EPOCH:AVG' -> (Path, int, int), or an error naming --compare."""
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise SystemExit(f"--compare {spec!r}: give EXP_DIR:EPOCH:AVG, "
                         "e.g. transducer_streaming/exp-zipformer:2:2")
    return Path(parts[0]), int(parts[1]), int(parts[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--exp-dir", type=Path, default=Path("transducer_streaming/exp"))
    parser.add_argument("--epoch", type=int, required=True)
    parser.add_argument("--avg", type=int, default=2)
    parser.add_argument("--use-averaged-model", type=str2bool, default=True)
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--left-context", type=int, default=32)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--compare", nargs="*", default=[], metavar="EXP:EPOCH:AVG",
                        help="More models to time beside --exp-dir's, e.g. "
                        "transducer_streaming/exp-zipformer:2:2")
    parser.add_argument("--beside-another-job", type=str2bool, default=False,
                        help="Also time the chunk-wise pass beside a second process doing the same")
    parser.add_argument("--neighbour", action="store_true",
                        help=argparse.SUPPRESS)  # internal: be that second process
    args = parser.parse_args()
    output = args.output.resolve() if args.output else None
    os.chdir(args.recipe_dir)
    torch.set_num_threads(1)
    from lhotse import load_manifest_lazy

    reference = (args.exp_dir, args.epoch, args.avg)
    # The neighbour process only ever runs the first model.
    models = [reference] + ([] if args.neighbour else [parse_model(s) for s in args.compare])
    loaded = [load_model(argparse.Namespace(exp_dir=e, epoch=n, avg=a,
                                            use_averaged_model=args.use_averaged_model))
              for e, n, a in models]
    cuts = [c for _, c in zip(range(args.utterances),
                              load_manifest_lazy("data/fbank/librispeech_cuts_test-clean.jsonl.gz"))]
    audios = [c.load_audio()[0] for c in cuts]
    audio_seconds = sum(len(a) for a in audios) / SAMPLE_RATE
    piece = SAMPLE_RATE // 10

    def chunkwise_seconds(model) -> float:
        recognizer = StreamingRecognizer(model, StreamingConfig(args.chunk_size,
                                                                args.left_context))
        start = time.perf_counter()
        for begin_utt in range(0, len(audios), 50):
            recognizer.recognize(audios[begin_utt : begin_utt + 50], piece_samples=piece)
        return time.perf_counter() - start

    def simulated_seconds(model) -> float:
        start = time.perf_counter()
        extractor = make_fbank_extractor()
        with torch.no_grad():
            for audio in audios:
                feats = torch.from_numpy(extractor.extract(audio, SAMPLE_RATE)).unsqueeze(0)
                enc, lens = model.encoder(feats, torch.tensor([feats.shape[1]]),
                                          args.chunk_size, args.left_context)
                greedy_search(model, enc, lens)
        return time.perf_counter() - start

    if args.neighbour:  # until the benchmark stops this process
        print("ready", flush=True)
        while True:
            chunkwise_seconds(loaded[0])
    chunkwise = [chunkwise_seconds(model) for model in loaded]
    beside = None
    if args.beside_another_job:
        argv = ["--recipe-dir", ".", "--exp-dir", str(args.exp_dir), "--epoch", str(args.epoch),
                "--avg", str(args.avg), "--use-averaged-model", str(args.use_averaged_model),
                "--utterances", str(args.utterances), "--chunk-size", str(args.chunk_size),
                "--left-context", str(args.left_context), "--neighbour"]
        neighbour = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv],
                                     stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, OMP_NUM_THREADS="1"))
        try:
            if neighbour.stdout.readline().strip() != "ready":
                raise SystemExit("bench_streaming_rtf.py: the second process did not start")
            chunkwise_seconds(loaded[0])  # the neighbour warms up meanwhile
            beside = chunkwise_seconds(loaded[0])
        finally:
            neighbour.kill()
            neighbour.wait()
        chunkwise_again = chunkwise_seconds(loaded[0])

    simulated = [simulated_seconds(model) for model in loaded]
    text = (f"{len(audios)} test-clean utterances, {audio_seconds:.0f} s of audio, 1 thread, "
            f"greedy search, chunk {args.chunk_size * 40} ms, left context {args.left_context * 40} ms.\n\n")
    if len(loaded) == 1:
        text += ("| mode | RTF |\n|---|---:|\n"
                 f"| chunk-wise from audio (0.1 s pieces, 50 streams) | {chunkwise[0] / audio_seconds:.4f} |\n"
                 f"| simulated streaming (whole utterances, one at a time) | {simulated[0] / audio_seconds:.4f} |\n"
                 f"| ratio chunk-wise / simulated | {chunkwise[0] / simulated[0]:.2f} |\n")
    else:
        text += ("RTF of chunk-wise recognition from audio (0.1 s pieces, 50 streams) and of "
                 "simulated streaming (whole utterances, one at a time); the models ran one "
                 "after another in this process, on the same utterances.\n\n"
                 "| model | encoder | parameters | chunk-wise RTF | relative to the first "
                 "| simulated RTF | relative to the first |\n|---|---|---:|---:|---:|---:|---:|\n")
        for (exp, epoch, avg), model, c, m in zip(models, loaded, chunkwise, simulated):
            params = sum(p.numel() for p in model.parameters()) / 1e6
            text += (f"| {exp} epoch {epoch} avg {avg} | {type(model.encoder).__name__} "
                     f"| {params:.2f} M | {c / audio_seconds:.4f} | {c / chunkwise[0]:.2f}x "
                     f"| {m / audio_seconds:.4f} | {m / simulated[0]:.2f}x |\n")
    if beside is not None:
        text += ("\nChunk-wise from audio beside a second process doing the same on the other "
                 "core (one thread each), against alone before and after:\n\n"
                 "| chunk-wise pass | RTF |\n|---|---:|\n"
                 f"| alone | {chunkwise[0] / audio_seconds:.4f} |\n"
                 f"| beside another job | {beside / audio_seconds:.4f} |\n"
                 f"| alone, again | {chunkwise_again / audio_seconds:.4f} |\n"
                 f"| ratio beside / mean alone | {2 * beside / (chunkwise[0] + chunkwise_again):.2f} |\n")
    publish_report(text, output)


if __name__ == "__main__":
    main()
