#!/usr/bin/env python3
r"""Decode dev-clean, test-clean and test-other with a model of this folder.

Usage (from egs/librispeech/ASR):
  ./transducer_streaming/decode.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 --decoding-method greedy_search
  ./transducer_streaming/decode.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 --decoding-method modified_beam_search --beam-size 4
  # simulated streaming: 320 ms chunks (8 encoder frames), 1.28 s left context
  ./transducer_streaming/decode.py --exp-dir transducer_streaming/exp --epoch 4 --avg 2 \
      --chunk-size 8 --left-context 32

Writes recogs-, errs- and wer-summary- files to <exp-dir>/<decoding-method>/.
"""

try:
    from icefall_kd.recipes.decode import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(description=__doc__)
