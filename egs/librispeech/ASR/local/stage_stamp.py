#!/usr/bin/env python3
r"""Which units of a preparation stage are stale, and recording them once redone.

Usage:
  # prints the stale unit names (space-separated, nothing when all are up to date) and logs why
  ./local/stage_stamp.py stale data/.manifests.done \
      --unit dev-clean on-bad-input=skip download/LibriSpeech/dev-clean
  # after the stage redid them: record the units' current inputs in the stamp
  ./local/stage_stamp.py record data/.manifests.done \
      --unit dev-clean on-bad-input=skip download/LibriSpeech/dev-clean

Each --unit is NAME OPTIONS INPUT [INPUT ...]: the unit's name, the options it runs with (one
word) and the paths it reads (folders are fingerprinted by file sizes and times, files by
content). An empty stamp, as versions before stamps wrote, is taken as up to date and
replaced by a stamp of the current inputs. See icefall_kd/data/stage_stamp.py.
r"""

import argparse
import logging
import sys
from pathlib import Path

from icefall_kd.data.stage_stamp import Unit, adopt_legacy, record, stale_units
from icefall_kd.utils import HelpFormatter, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("action", choices=["stale", "record"])
    parser.add_argument("stamp", type=Path, help="The stage's .done stamp")
    parser.add_argument("--unit", nargs="+", action="append", required=True,
                        metavar="NAME OPTIONS INPUT", help="A unit of the stage's work")
    args = parser.parse_args()
    setup_logging()
    units = []
    for spec in args.unit:
        if len(spec) < 3:
            parser.error(f"--unit {' '.join(spec)}: give NAME OPTIONS INPUT [INPUT ...]")
        units.append(Unit(spec[0], [Path(p) for p in spec[2:]], spec[1]))
    try:
        if args.action == "record":
            record(args.stamp, units)
            return
        if adopt_legacy(args.stamp, units):
            logging.info(f"{args.stamp} was written before stage stamps: its work is taken "
                         "as up to date and its current inputs recorded")
            return
        stale = stale_units(args.stamp, units)
    except ValueError as error:
        sys.exit(f"ERROR: {error}")
    recorded = args.stamp.is_file()
    for name, reason in stale.items():
        if recorded:  # a first run needs no explanation
            logging.info(f"{args.stamp}: {name} is redone: {reason}")
    print(" ".join(stale))


if __name__ == "__main__":
    main()
