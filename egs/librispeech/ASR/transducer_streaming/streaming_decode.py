#!/usr/bin/env python3
r"""Recognise the test sets chunk by chunk from audio, as a deployed recogniser does, and
measure first-token latency, symbol delay and the real-time factor.

Usage (from egs/librispeech/ASR):
  ./transducer_streaming/streaming_decode.py --exp-dir transducer_streaming/exp \
      --epoch 4 --avg 2 --chunk-size 8 --left-context 32 --decoding-method greedy_search

Writes recogs-, errs-, wer-summary-, latency-<set>-<suffix>.json and timestamps- files to
<exp-dir>/streaming/<decoding-method>/.
"""

try:
    from icefall_kd.recipes.streaming_decode import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(description=__doc__)
