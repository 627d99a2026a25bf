#!/usr/bin/env python3
r"""lhotse recording and supervision manifests for LibriSpeech parts, input checked first.

Usage:
  ./local/prepare_manifests.py --corpus-dir download/LibriSpeech \
      --parts "train-clean-100 dev-clean test-clean test-other" --output-dir data/manifests

Bad input (missing or corrupt audio, empty or non-ASCII transcripts, audio without a
transcript, too short or too long utterances) is reported with the file it is in. With
--on-bad-input skip (default) it is left out and listed in <output-dir>/rejected_<part>.txt;
with --on-bad-input stop the script exits with the full list. Audio at another sample rate
is kept and resampled to 16 kHz by the fbank stage.
r"""

import argparse
import sys
from pathlib import Path

from icefall_kd.data.librispeech import BadCorpusInput, prepare_librispeech_part
from icefall_kd.utils import HelpFormatter, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--corpus-dir", type=Path, required=True,
                        help="The LibriSpeech folder (holding <part>/<speaker>/<chapter>/)")
    parser.add_argument("--parts", required=True, help="Space-separated part names")
    parser.add_argument("--output-dir", type=Path, default=Path("data/manifests"))
    parser.add_argument("--alignments-dir", type=Path, default=None,
                        help="Word alignments in LibriSpeech layout; default: beside the "
                        "transcripts")
    parser.add_argument("--on-bad-input", choices=["skip", "stop"], default="skip",
                        help="Leave bad utterances out (and list them), or stop")
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--max-seconds", type=float, default=35.0)
    args = parser.parse_args()
    setup_logging()
    try:
        for part in args.parts.split():
            prepare_librispeech_part(
                args.corpus_dir, part, args.output_dir, args.on_bad_input,
                args.min_seconds, args.max_seconds, args.alignments_dir,
            )
    except BadCorpusInput as error:
        sys.exit(f"ERROR: {error}")


if __name__ == "__main__":
    main()
