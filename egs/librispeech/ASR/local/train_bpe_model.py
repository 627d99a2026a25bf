#!/usr/bin/env python3
r"""Train a sentencepiece unigram model on the training transcripts.

Usage:
  ./local/train_bpe_model.py --supervisions data/manifests/librispeech_supervisions_train-clean-100.jsonl.gz \
      --lang-dir data/lang_bpe_500 --vocab-size 500

Writes transcript_words.txt, unigram_<V>.model, bpe.model and tokens.txt to --lang-dir,
with <blk>=0, <sos/eos>=1, <unk>=2 as icefall and sherpa-onnx expect.
r"""

import argparse
from pathlib import Path

from lhotse import load_manifest_lazy

from icefall_kd.data.bpe import train_bpe_model, write_transcript_words
from icefall_kd.utils import HelpFormatter, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--supervisions", type=Path, nargs="+", required=True,
                        help="Supervision manifests whose text trains the model")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--vocab-size", type=int, default=500)
    args = parser.parse_args()
    setup_logging()
    args.lang_dir.mkdir(parents=True, exist_ok=True)
    transcripts = args.lang_dir / "transcript_words.txt"
    write_transcript_words(
        (s.text for path in args.supervisions for s in load_manifest_lazy(path)), transcripts
    )
    train_bpe_model(transcripts, args.lang_dir, args.vocab_size)


if __name__ == "__main__":
    main()
