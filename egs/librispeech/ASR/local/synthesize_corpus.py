#!/usr/bin/env python3
"""Synthesise the embedded corpus (English read speech in LibriSpeech's layout).

Usage:
  ./local/synthesize_corpus.py --profile tiny --output-dir download/tts-tiny --num-jobs 2

Writes <output-dir>/LibriSpeech/<part>/... with .flac audio, .trans.txt transcripts and
.alignment.txt exact word times, plus <output-dir>/tts-corpus-<profile>.json with sizes
and the measured generation time.
"""

import argparse
from pathlib import Path

from icefall_kd.corpus.profiles import PROFILES, get_profile
from icefall_kd.corpus.synthesize import synthesize_corpus
from icefall_kd.utils import HelpFormatter, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default",
                        help="Corpus size: tiny for tests, default for the recipe")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="Where LibriSpeech/ is written")
    parser.add_argument("--seed", type=int, default=42,
                        help="Same seed, same corpus (sentences, speakers, audio)")
    parser.add_argument("--num-jobs", type=int, default=2, help="Worker processes")
    args = parser.parse_args()
    setup_logging()
    synthesize_corpus(args.output_dir, get_profile(args.profile), args.seed, args.num_jobs)


if __name__ == "__main__":
    main()
