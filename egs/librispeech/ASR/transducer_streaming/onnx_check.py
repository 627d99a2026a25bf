#!/usr/bin/env python3
r"""Check exported ONNX files against the PyTorch model: the encoder over several chunks
with carried states (driven as sherpa-onnx drives it), the decoder and the joiner.
Exits with status 1 when a difference exceeds --tolerance.

Usage (from egs/librispeech/ASR):
  ./transducer_streaming/onnx_check.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 \
      --chunk-size 8 --left-context 32
  # int8 files: report the quantisation error
  ./transducer_streaming/onnx_check.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 \
      --chunk-size 8 --left-context 32 --precision int8 --tolerance 1.0
"""

try:
    from icefall_kd.recipes.onnx_check import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=True, description=__doc__)
