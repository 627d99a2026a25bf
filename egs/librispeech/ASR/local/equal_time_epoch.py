#!/usr/bin/env python3
"""Print the epoch of a training whose end came closest to another training's whole time
(both read from their train.log, pauses between resumed runs left out); print nothing when
either log has no such time. run.sh decodes that Zipformer checkpoint beside the
Conformer's (RESULTS.md, Zipformer: "At the Conformer's training time").

Usage: ./local/equal_time_epoch.py transducer_teacher/exp/train.log \\
           transducer_teacher/exp-zipformer/train.log
"""

import argparse
from pathlib import Path

from icefall_kd.reporting.training_log import equal_time_epoch
from icefall_kd.utils import HelpFormatter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("reference_log", type=Path, help="The training whose time is the budget")
    parser.add_argument("log", type=Path, help="The training whose epoch is printed")
    args = parser.parse_args()
    epoch = equal_time_epoch(args.reference_log, args.log)
    if epoch is not None:
        print(epoch)


if __name__ == "__main__":
    main()
