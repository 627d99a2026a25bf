#!/usr/bin/env python3
r"""Export the averaged streaming model to ONNX for sherpa-onnx's OnlineRecognizer
(model type "conformer"), fp32 and int8, plus tokens.txt; the fp32 files are then checked
against PyTorch.

Usage (from egs/librispeech/ASR):
  ./transducer_streaming/export_onnx.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 \
      --chunk-size 8 --left-context 32 --lang-dir data/lang_bpe_100

Writes to <exp-dir>: encoder-epoch-4-avg-2-chunk-8-left-32.onnx, decoder-..., joiner-...,
their .int8.onnx copies and tokens.txt. Decode them with ./transducer_streaming/sherpa_decode.py.
"""

try:
    from icefall_kd.recipes.export_onnx import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=True, description=__doc__)
