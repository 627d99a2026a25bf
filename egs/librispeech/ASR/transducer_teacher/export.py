#!/usr/bin/env python3
r"""Export the averaged full-context teacher: pretrained.pt, or a TorchScript file.

Usage (from egs/librispeech/ASR):
  # <exp-dir>/pretrained.pt = {"model": state_dict, "model_config": ...}
  ./transducer_teacher/export.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2

  # <exp-dir>/jit-epoch-4-avg-2.pt: encoder (traced; any length and batch), decoder and
  # joiner; checked against eager PyTorch
  ./transducer_teacher/export.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2 --jit true
"""

try:
    from icefall_kd.recipes.export import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=False, description=__doc__)
