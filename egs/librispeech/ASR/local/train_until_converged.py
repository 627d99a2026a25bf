#!/usr/bin/env python3
r"""Train one epoch at a time, decode dev-clean after each, and stop once an epoch improves
the best dev WER so far by less than --min-gain (relative), or at --max-epochs.

Usage (from egs/librispeech/ASR):
  ./local/train_until_converged.py --exp-dir transducer_streaming/exp --max-epochs 30 \
      --decode "./transducer_streaming/decode.py --lang-dir data/lang_bpe_100 --chunk-size 8 --left-context 32" \
      -- ./transducer_streaming/train.py --exp-dir transducer_streaming/exp --model-preset small ...

The training command gets ``--num-epochs E`` appended (the trainer resumes from its last
checkpoint, and its learning-rate schedule does not depend on the number of epochs, so
training on epoch by epoch is one training in pieces, update for update the same as one
uninterrupted run: tests/test_trainer.py checks it). The decode command gets
``--exp-dir --epoch E --avg 1 --use-averaged-model true --test-sets dev-clean
--decoding-method greedy_search --skip-existing true``: the model averaged over epoch E, the
learning curve's point. Both run only when their outputs are missing, so a rerun after an
interruption picks up where it stopped and ends at the same epoch.

Writes ``<exp-dir>/convergence.json`` (``--summary``): the dev WER of every epoch, the epoch
it stopped at, the epoch of lowest dev WER (what selection picks), whether the rule or the
budget stopped it, and the last epoch's relative gain (the slope a budget stop leaves). The
decode output goes to ``<exp-dir>/dev-decode.log``. Prints the epoch it stopped at as the
last line of its output.
"""

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from icefall_kd.reporting.learning_curve import MIN_RELATIVE_GAIN, converged, relative_gain
from icefall_kd.reporting.result_key import ResultKey
from icefall_kd.utils import HelpFormatter

TEST_SET = "dev-clean"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--max-epochs", type=int, required=True, help="The budget")
    parser.add_argument("--min-epochs", type=int, default=2,
                        help="Epochs trained before the rule may stop the training")
    parser.add_argument("--min-gain", type=float, default=MIN_RELATIVE_GAIN,
                        help="Stop once an epoch improves the best dev WER by less than this")
    parser.add_argument("--decode", required=True,
                        help="decode.py command line without --exp-dir/--epoch/--avg")
    parser.add_argument("--summary", default="convergence.json",
                        help="File name of the summary in --exp-dir (another one for a "
                             "training extended to a fixed budget keeps the first)")
    parser.add_argument("train", nargs=argparse.REMAINDER,
                        help="After --: the training command, without --num-epochs")
    args = parser.parse_args(argv)
    if args.train and args.train[0] == "--":
        args.train = args.train[1:]
    if not args.train:
        parser.error("give the training command after --")
    if "--num-epochs" in args.train:
        parser.error("the training command must not set --num-epochs: this script does")
    if not 1 <= args.min_epochs <= args.max_epochs:
        parser.error(f"--min-epochs {args.min_epochs} must be between 1 and --max-epochs")
    return args


def decode_setting(decode: list) -> tuple:
    """(chunk size, left context) of a decode command line; (None, None) for full context."""
    def value(flag):
        return int(decode[decode.index(flag) + 1]) if flag in decode else -1
    chunk, left = value("--chunk-size"), value("--left-context")
    return (chunk, left) if chunk > 0 else (None, None)


def run(command: list, log: Path = None) -> None:
    print("+ " + shlex.join(command), flush=True)
    if log is None:
        result = subprocess.run(command)
    else:  # decoding output apart from train.log, whose time span is the training's
        with open(log, "a") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"train_until_converged: command failed (exit {result.returncode}): "
                         f"{shlex.join(command)}")


def dev_wer(exp_dir: Path, epoch: int, chunk, left) -> float:
    key = ResultKey(epoch, 1, chunk, left, use_averaged_model=True)
    path = exp_dir / "greedy_search" / f"wer-summary-{TEST_SET}-{key.to_suffix()}.txt"
    if not path.is_file():
        raise SystemExit(f"train_until_converged: the decode command wrote no {path}")
    return float(path.read_text().splitlines()[1].split("\t")[1])


def main(argv=None) -> int:
    args = parse_args(argv)
    decode = shlex.split(args.decode)
    chunk, left = decode_setting(decode)
    wers = []
    stopped_by_rule = False
    for epoch in range(1, args.max_epochs + 1):
        if not (args.exp_dir / f"epoch-{epoch}.pt").is_file():
            run(args.train + ["--num-epochs", str(epoch)])
        run(decode + ["--exp-dir", str(args.exp_dir), "--epoch", str(epoch), "--avg", "1",
                      "--use-averaged-model", "true", "--test-sets", TEST_SET,
                      "--decoding-method", "greedy_search", "--skip-existing", "true"],
            log=args.exp_dir / "dev-decode.log")
        wers.append(dev_wer(args.exp_dir, epoch, chunk, left))
        print(f"epoch {epoch}: {TEST_SET} WER {wers[-1]:.2f}", flush=True)
        if epoch >= args.min_epochs and converged(wers, args.min_gain):
            stopped_by_rule = True
            break
    summary = {
        "test_set": TEST_SET, "rule": f"stop once an epoch improves the best {TEST_SET} WER "
        f"before it by less than {args.min_gain:.0%} relative (from epoch {args.min_epochs})",
        "wers": {str(e): w for e, w in enumerate(wers, 1)}, "epochs": len(wers),
        # What selection on dev picks: the epoch of lowest WER (the earlier one on a tie).
        "best_epoch": min(range(len(wers)), key=lambda i: (wers[i], i)) + 1,
        "stopped_by": "rule" if stopped_by_rule else "budget (--max-epochs)",
        "last_relative_gain": relative_gain(min(wers[:-1]), wers[-1]) if len(wers) > 1 else None,
    }
    tmp = args.exp_dir / f"{args.summary}.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(args.exp_dir / args.summary)
    print(len(wers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
