#!/usr/bin/env python3
"""Check cut manifests before training uses them; exits non-zero listing every bad cut.

Usage:
  ./local/validate_manifest.py data/fbank/librispeech_cuts_dev-clean.jsonl.gz
  # and check each cuts file holds exactly the utterances of its supervision manifest
  ./local/validate_manifest.py --supervisions-dir data/manifests \
      data/fbank/librispeech_cuts_dev-clean.jsonl.gz
"""

import argparse
import logging
import sys
from pathlib import Path

from icefall_kd.data.validate import check_cuts_match_supervisions, validate_cuts_manifest
from icefall_kd.utils import HelpFormatter, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("manifests", type=Path, nargs="+",
                        help="Cut manifests, librispeech_cuts_<part>.jsonl.gz")
    parser.add_argument("--supervisions-dir", type=Path, default=None,
                        help="Compare each cut manifest with "
                        "<dir>/librispeech_supervisions_<part>.jsonl.gz")
    args = parser.parse_args()
    setup_logging()
    for path in args.manifests:
        try:
            count = validate_cuts_manifest(path)
            if args.supervisions_dir is not None:
                part = path.name.removeprefix("librispeech_cuts_").removesuffix(".jsonl.gz")
                check_cuts_match_supervisions(
                    path, args.supervisions_dir / f"librispeech_supervisions_{part}.jsonl.gz")
        except ValueError as error:
            sys.exit(f"ERROR: {error}")
        logging.info(f"{path}: {count} cuts OK")


if __name__ == "__main__":
    main()
