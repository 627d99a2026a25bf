#!/usr/bin/env python3
r"""Distillation stage 2, output-layer learning: starting from the stage-1 model, the
student learns the teacher's output distribution per output token (each model's token
distribution where its own alignment emits it), through a Hinton-style KL(q || student)
where q is the teacher's distribution power-transformed with an exponent chosen per node
(--kd-alpha-mode entropy_floor: only over-confident nodes are smoothed, each just enough to
reach --kd-entropy-floor nats) and the student is transformed with the same exponent.

The defaults are the method that run.sh trains (weight 0.1, rising over 100 batches).

Usage (from egs/librispeech/ASR):
  ./kd_stage2_output/train.py --exp-dir kd_stage2_output/exp --num-epochs 1 \
      --teacher-exp-dir transducer_teacher/exp --teacher-epoch 6 --teacher-avg 2 \
      --init-from kd_stage1_hidden/exp --init-epoch 1 --init-avg 1 \
      --lang-dir data/lang_bpe_100

Ablations: --kd-alpha-mode fixed --kd-temperature T is plain temperature KD;
--kd-hinton false transforms the teacher only; --output-kd lattice compares the models on
the nodes of the pruned lattice instead (--kd-classes collapsed3 is then the 3-class KD of
Panchapagesan et al.). Decode with ../transducer_streaming/decode.py.
"""

try:
    from icefall_kd.recipes.train_distill import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(__doc__, stage="stage2")  # defaults: train_distill.STAGE_DEFAULTS
