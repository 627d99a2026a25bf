#!/usr/bin/env python3
"""Decode dev-clean, test-clean and test-other with a model of this folder.

Usage (from egs/librispeech/ASR):
  ./transducer_teacher/decode.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2 --decoding-method greedy_search
  ./transducer_teacher/decode.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2 --decoding-method modified_beam_search --beam-size 4

Writes recogs-, errs- and wer-summary- files to <exp-dir>/<decoding-method>/.
"""

try:
    from icefall_kd.recipes.decode import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(description=__doc__)
