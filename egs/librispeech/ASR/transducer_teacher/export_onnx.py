#!/usr/bin/env python3
r"""Export the averaged full-context teacher to ONNX for sherpa-onnx's OfflineRecognizer,
fp32 and int8, plus tokens.txt; the fp32 files are then checked against PyTorch.

Usage (from egs/librispeech/ASR):
  ./transducer_teacher/export_onnx.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2 \
      --lang-dir data/lang_bpe_100

Writes to <exp-dir>: encoder-epoch-4-avg-2.onnx, decoder-..., joiner-..., their .int8.onnx
copies and tokens.txt. Decode them with ./transducer_teacher/sherpa_decode.py.
"""

try:
    from icefall_kd.recipes.export_onnx import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=False, description=__doc__)
