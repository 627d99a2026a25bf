#!/usr/bin/env python3
r"""Decode the test sets with sherpa-onnx's OnlineRecognizer (greedy search) on the files of
export_onnx.py, fp32 and int8; write recogs-, errs-, wer-summary- files and a
sherpa-summary-*.json with the share of hypotheses identical to PyTorch chunk-wise greedy
search and the real-time factor on one thread.

Usage (from egs/librispeech/ASR):
  ./transducer_streaming/sherpa_decode.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 \
      --chunk-size 8 --left-context 32 --lang-dir data/lang_bpe_100

Results go to <exp-dir>/sherpa-onnx/greedy_search/.
"""

try:
    from icefall_kd.recipes.sherpa_decode import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=True, description=__doc__)
