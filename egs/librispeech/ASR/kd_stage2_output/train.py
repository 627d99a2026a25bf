#!/usr/bin/env python3
r"""Distillation stage 2, output-layer learning: starting from the stage-1 model, the
student learns the teacher's output distribution on the nodes of the pruned RNN-T lattice,
through KL(q || student) where q is the teacher's distribution power-transformed with an
exponent chosen per node (--kd-alpha-mode entropy_floor: only over-confident nodes are
smoothed, each just enough to reach --kd-entropy-floor nats).

Usage (from egs/librispeech/ASR):
  ./kd_stage2_output/train.py --exp-dir kd_stage2_output/exp --num-epochs 2 \
      --teacher-exp-dir transducer_teacher/exp --teacher-epoch 6 --teacher-avg 2 \
      --init-from kd_stage1_hidden/exp --init-epoch 2 --init-avg 1 \
      --lang-dir data/lang_bpe_100 --output-kd-scale 0.5

Ablations: --kd-alpha-mode fixed --kd-temperature T is plain temperature KD;
--kd-classes collapsed3 is the 3-class KD of Panchapagesan et al.; --kd-hinton true
transforms the student too. Decode with ../transducer_streaming/decode.py.
"""

from icefall_kd.recipes.train_distill import main

if __name__ == "__main__":
    main(__doc__, defaults=dict(output_kd_scale=0.5, output_kd_warm_step=100,
                                init_from="kd_stage1_hidden/exp"))
