#!/usr/bin/env python3
r"""80-dim fbank features (sherpa-onnx's settings) for LibriSpeech parts, stored with lilcom.

Usage:
  ./local/compute_fbank.py --manifest-dir data/manifests --output-dir data/fbank \
      --parts "dev-clean test-clean" --num-jobs 2
  ./local/compute_fbank.py --parts train-clean-100 --perturb-speed true

Writes <output-dir>/librispeech_cuts_<part>.jsonl.gz and the feature archives beside it.
r"""

import argparse
from pathlib import Path

from icefall_kd.data.fbank import compute_fbank_for_part
from icefall_kd.utils import HelpFormatter, setup_logging, str2bool


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"))
    parser.add_argument("--output-dir", type=Path, default=Path("data/fbank"))
    parser.add_argument("--parts", required=True, help="Space-separated part names")
    parser.add_argument("--perturb-speed", type=str2bool, default=False,
                        help="Add 0.9x and 1.1x speed-perturbed copies (use for training parts)")
    parser.add_argument("--num-jobs", type=int, default=2)
    args = parser.parse_args()
    setup_logging()
    for part in args.parts.split():
        compute_fbank_for_part(
            args.manifest_dir / f"librispeech_recordings_{part}.jsonl.gz",
            args.manifest_dir / f"librispeech_supervisions_{part}.jsonl.gz",
            args.output_dir / f"librispeech_cuts_{part}.jsonl.gz",
            args.output_dir / f"feats_{part}",
            num_jobs=args.num_jobs,
            perturb_speed=args.perturb_speed,
        )


if __name__ == "__main__":
    main()
