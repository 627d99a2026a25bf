#!/usr/bin/env python3
r"""Train the full-context (non-streaming) Conformer transducer: the distillation teacher.

Usage (from egs/librispeech/ASR):
  ./transducer_teacher/train.py --exp-dir transducer_teacher/exp --num-epochs 4 \
      --lang-dir data/lang_bpe_500 --max-duration 150

  # two processes (GPUs, or CPUs with gloo):
  torchrun --nproc-per-node 2 ./transducer_teacher/train.py --exp-dir transducer_teacher/exp

Writes exp/epoch-N.pt, exp/checkpoint-<batch>.pt, exp/tensorboard/; rerunning the same
command resumes exactly where it stopped.
"""

try:
    from icefall_kd.recipes.train_transducer import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=False, description=__doc__)
