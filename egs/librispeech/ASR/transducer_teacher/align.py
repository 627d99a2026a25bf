#!/usr/bin/env python3
r"""Reference word times for latency metrics where a corpus has none (LibriSpeech): a Viterbi
alignment of the full-context teacher, stored with the cuts as alignment["word_teacher"].
On the embedded corpus, whose word times are exact, it also writes the aligner's error to
<exp-dir>/aligner-error-<part>.json.

Usage (from egs/librispeech/ASR):
  ./transducer_teacher/align.py --exp-dir transducer_teacher/exp --epoch 4 --avg 2 \
      --parts "test-clean test-other"
"""

try:
    from icefall_kd.recipes.align_with_teacher import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(description=__doc__)
