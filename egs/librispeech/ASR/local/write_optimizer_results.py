#!/usr/bin/env python3
"""Write RESULTS-optimizer.md: the arms of optimizer_study.sh compared on dev-clean
(icefall_kd/reporting/optimizer_comparison.py), with the commands that trained and decoded
them and its plot beside it (optimizer-curves.png for RESULTS-optimizer.md).

Usage: ./local/write_optimizer_results.py --epochs 3 --commands optimizer/commands.txt \\
           --arm "AdamW, peak lr 0.001=optimizer/adamw" \\
           --arm "ScaledAdam, peak lr 0.045=optimizer/scaled-adam-lr0.045"
"""

import argparse
from pathlib import Path

from icefall_kd.reporting.optimizer_comparison import Arm, comparison_lines
from icefall_kd.utils import HelpFormatter


def parse_arm(text: str) -> Arm:
    label, sep, folder = text.rpartition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"--arm takes LABEL=EXP_DIR, got '{text}'")
    return Arm(label, Path(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--arm", type=parse_arm, action="append", required=True,
                        help="LABEL=EXP_DIR, the reference first; two or more")
    parser.add_argument("--epochs", type=int, required=True, help="The budget every arm trained")
    parser.add_argument("--title", default="One model, several optimisers")
    parser.add_argument("--intro", default="", help="A paragraph saying what was trained")
    parser.add_argument("--commands", type=Path, required=True,
                        help="The commands that trained and decoded the arms, one per line")
    parser.add_argument("--output", type=Path, default=Path("RESULTS-optimizer.md"))
    args = parser.parse_args()
    if len(args.arm) < 2:
        parser.error("give at least two --arm")
    if not args.commands.is_file():
        parser.error(f"--commands {args.commands}: no such file (optimizer_study.sh writes it)")
    # RESULTS-optimizer.md -> optimizer-curves.png, RESULTS-optimizer-conformer.md ->
    # optimizer-conformer-curves.png
    plot = args.output.with_name(args.output.stem.removeprefix("RESULTS-") + "-curves.png")
    lines = [f"# {args.title}", "", *([args.intro, ""] if args.intro else []),
             *comparison_lines(args.arm, args.epochs, plot=plot), "",
             "Commands (from egs/librispeech/ASR):", "", "```bash",
             *args.commands.read_text().splitlines(), "```", ""]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
