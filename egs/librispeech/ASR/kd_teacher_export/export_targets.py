#!/usr/bin/env python3
r"""Export the frozen teacher's encoder outputs once, stored with the cuts, so that the
distillation stages can read them instead of running the teacher every step
(--teacher-targets exported).

Usage (from egs/librispeech/ASR):
  ./kd_teacher_export/export_targets.py --exp-dir transducer_teacher/exp --epoch 6 --avg 2 \
      --parts "train-clean-100 dev-clean" --output-dir data/teacher_targets
  ./kd_stage1_hidden/train.py ... --teacher-targets exported --manifest-dir data/teacher_targets

Trade-off: on-the-fly targets cost a teacher encoder pass per step (see
benchmarks/results/distillation.md) but match augmented input exactly; exported ones cost
one pass and disk space (float16: 2 bytes x 25 frames/s x encoder dim) and are computed from
unaugmented features, so SpecAugment time warping cannot be used with them.
"""

try:
    from icefall_kd.recipes.export_teacher_targets import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(__doc__)
