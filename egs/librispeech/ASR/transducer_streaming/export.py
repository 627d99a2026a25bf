#!/usr/bin/env python3
r"""Export the averaged streaming model: pretrained.pt, or a TorchScript file for one chunk.

Usage (from egs/librispeech/ASR):
  # <exp-dir>/pretrained.pt = {"model": state_dict, "model_config": ...}; usable as
  # epoch-99.pt with --epoch 99 --avg 1 --use-averaged-model false
  ./transducer_streaming/export.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2

  # <exp-dir>/jit-epoch-4-avg-2-chunk-8-left-32.pt: encoder (traced for 320 ms chunks,
  # 1.28 s left context), decoder and joiner; checked against eager PyTorch
  ./transducer_streaming/export.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 \
      --jit true --chunk-size 8 --left-context 32
"""

try:
    from icefall_kd.recipes.export import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=True, description=__doc__)
