#!/usr/bin/env python3
r"""Train the streaming Conformer transducer (chunked attention, limited left context,
causal convolution): the paper's "original streaming model" and the distillation student's
starting point.

Usage (from egs/librispeech/ASR):
  ./transducer_streaming/train.py --exp-dir transducer_streaming/exp --num-epochs 4 \
      --lang-dir data/lang_bpe_500 --max-duration 150

By default every batch draws a chunk size from --chunk-sizes 8,16,32,-1 (320 ms, 640 ms,
1.28 s, full context) and a left context from --left-contexts 16,32,64,-1 (encoder frames
of 40 ms), so one model serves several decoding chunk sizes. Pass one value of each for a
fixed chunk. Rerunning the same command resumes exactly where it stopped.
"""

try:
    from icefall_kd.recipes.train_transducer import main
except ModuleNotFoundError as error:  # run outside the project's environment
    raise SystemExit(f"{error}: run `source .venv/bin/activate` in the repository root first "
                     "(tools/install.sh creates it)") from None

if __name__ == "__main__":
    main(streaming=True, description=__doc__)
