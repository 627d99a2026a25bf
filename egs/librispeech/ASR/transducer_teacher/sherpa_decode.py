#!/usr/bin/env python3
r"""Decode the test sets with sherpa-onnx's OfflineRecognizer (greedy search) on the files of
export_onnx.py, fp32 and int8; write recogs-, errs-, wer-summary- files and a
sherpa-summary-*.json with the share of hypotheses identical to PyTorch greedy search and
the real-time factor on one thread.

Usage (from egs/librispeech/ASR):
  ./transducer_teacher/sherpa_decode.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2 \
      --lang-dir data/lang_bpe_100

Results go to <exp-dir>/sherpa-onnx/greedy_search/.
"""

try:
    from icefall_kd.recipes.sherpa_decode import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=False, description=__doc__)
