#!/usr/bin/env python3
r"""Distillation stage 1, hidden-layer learning: the streaming student learns the frozen
full-context teacher's encoder output through an MSE loss, next to its own pruned RNN-T loss.

Usage (from egs/librispeech/ASR):
  ./kd_stage1_hidden/train.py --exp-dir kd_stage1_hidden/exp --num-epochs 1 \
      --teacher-exp-dir transducer_teacher/exp --teacher-epoch 6 --teacher-avg 2 \
      --init-from transducer_streaming/exp --init-epoch 6 --init-avg 2 \
      --lang-dir data/lang_bpe_100

The defaults are the method that run.sh trains: MSE weight 0.3 through a linear projection
started at its least-squares fit (--hidden-kd-projection fitted; auto is the paper's plain
MSE where dimensions agree). The student starts from the streaming baseline by default
(--init-from teacher|scratch are the alternatives). --hidden-kd-layers "1:1,3:3" adds
intermediate layer pairs; projections are dropped for decoding. Adding
--output-kd-scale gives the one-stage "hierarchical" variant the paper argues against.
Decode the result with ../transducer_streaming/decode.py --exp-dir kd_stage1_hidden/exp.
"""

try:
    from icefall_kd.recipes.train_distill import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(__doc__, stage="stage1")  # defaults: train_distill.STAGE_DEFAULTS
