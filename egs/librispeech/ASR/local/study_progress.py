#!/usr/bin/env python3
"""Print where study.sh stands, at any time beside it: every training folder under
study/ with its dev-clean WER per epoch, best epoch, newest saved update and whether it
has stopped (a Markdown table; nothing is written).

Usage (from egs/librispeech/ASR, inside the venv: . ../../../.venv/bin/activate):
  ./local/study_progress.py
"""

import argparse
from pathlib import Path

from icefall_kd.reporting.study_progress import progress_lines
from icefall_kd.utils import HelpFormatter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--study-dir", type=Path, default=Path("study"))
    parser.add_argument("--decode-chunk", type=int, default=8,
                        help="The streaming dev decodes' chunk (study.sh --decode-chunk)")
    parser.add_argument("--decode-left-context", type=int, default=32)
    args = parser.parse_args()
    print("\n".join(progress_lines(args.study_dir, args.decode_chunk, args.decode_left_context)))


if __name__ == "__main__":
    main()
