#!/usr/bin/env python3
"""Check cut manifests before training uses them; exits non-zero listing every bad cut.

Usage:
  ./local/validate_manifest.py data/fbank/librispeech_cuts_dev-clean.jsonl.gz
"""

import argparse
import logging
import sys
from pathlib import Path

from icefall_kd.data.validate import validate_cuts_manifest
from icefall_kd.utils import HelpFormatter, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("manifests", type=Path, nargs="+")
    args = parser.parse_args()
    setup_logging()
    for path in args.manifests:
        try:
            count = validate_cuts_manifest(path)
        except ValueError as error:
            sys.exit(f"ERROR: {error}")
        logging.info(f"{path}: {count} cuts OK")


if __name__ == "__main__":
    main()
