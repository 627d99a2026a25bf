#!/usr/bin/env bash
# The whole recipe, stage by stage, on the embedded corpus by default.
#
# Usage:
#   ./run.sh                        # everything, embedded corpus, default profile
#   ./run.sh --profile tiny         # every stage on a few minutes of audio (smoke test)
#   ./run.sh --stage 3 --stop-stage 4
#   ./run.sh --corpus librispeech --dl-dir /data --model-preset paper --num-epochs 30
#
# Options (defaults in brackets):
#   --profile tiny|default    [default] corpus size and matching model/training settings
#   --corpus, --dl-dir, --nj  passed to prepare.sh (see ./prepare.sh --help)
#   --model-preset P          [tiny for the tiny profile, else small]
#   --num-epochs N            [6; 2 for tiny]   epochs of each transducer
#   --avg N                   [2; 1 for tiny]   epochs averaged for decoding
#   --max-duration S          [100; 40 for tiny] seconds of audio per batch
#   --decode-chunk N          [8]  streaming decoding chunk, encoder frames (8 = 320 ms)
#   --decode-left-context N   [32] streaming decoding left context, encoder frames
#   --parallel-training B     [true] train the teacher and the baseline side by side, one
#                             CPU thread each (on a 2-core CPU this beats one after the other
#                             with two threads each); false: one after the other
#   --stage N / --stop-stage N [0 / 6]
#
# Stages:
#   0  data: prepare.sh (corpus, manifests, fbank, BPE, validation)
#   1  train the full-context teacher      -> transducer_teacher/exp
#   2  train the streaming baseline        -> transducer_streaming/exp
#   3  decode both (greedy with 1 and 3 symbols per frame, modified beam search); the
#      baseline in simulated streaming
#   4  teacher forced alignment of the test sets (reference word times where a corpus has
#      none; on the embedded corpus, the aligner's error against the exact times)
#   5  chunk-wise recognition from audio with the baseline (latency, real-time factor)
#   6  RESULTS.md (local/write_results.py)
# The distillation stages and export come with later issues.
set -eou pipefail

profile=default
corpus=""
dl_dir=""
nj=2
model_preset=""
num_epochs=""
avg=""
max_duration=""
decode_chunk=8
decode_left_context=32
parallel_training=true
stage=0
stop_stage=6

cd "$(dirname "$0")"
. local/parse_options.sh
. local/setup_env.sh


if [ "$profile" = tiny ]; then
  vocab=200; model_preset=${model_preset:-tiny}; num_epochs=${num_epochs:-2}; avg=${avg:-1}
  max_duration=${max_duration:-40}; extra_train=(--num-buckets 2 --drop-last false --warm-step 20 --warmup-batches 10 --save-every-n 20)
  decode_chunk=4; decode_left_context=16
else
  # Measured on the embedded corpus: with 500 BPE pieces, AdamW 3e-3 and SpecAugment the
  # models stayed in the "mostly blank" phase for 1,500 updates; the 'small' preset with 100
  # pieces, lr 1e-3, CTC 0.5 and no SpecAugment/dropout left it after about 700 updates.
  vocab=100; model_preset=${model_preset:-small}; num_epochs=${num_epochs:-6}; avg=${avg:-2}
  max_duration=${max_duration:-100}; extra_train=(--base-lr 0.001 --lr-batches 5000 --warm-step 300
    --warmup-batches 100 --save-every-n 200 --ctc-loss-scale 0.5 --enable-spec-aug false --dropout 0.0)
fi
lang_dir=data/lang_bpe_$vocab
# Every command that produces a result is logged here; local/write_results.py shows them.
commands=exp-commands.txt

run_logged() {
  printf '%q ' "$@" | sed 's/ $//' >> "$commands"; echo >> "$commands"
  "$@"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: data"
  prepare_args=(--profile "$profile" --nj "$nj")
  [ -n "$corpus" ] && prepare_args+=(--corpus "$corpus")
  [ -n "$dl_dir" ] && prepare_args+=(--dl-dir "$dl_dir")
  ./prepare.sh "${prepare_args[@]}"
  : > "$commands"
  echo "./prepare.sh ${prepare_args[*]}" >> "$commands"
fi

# Side by side, each training loads its own batches (no worker process competing for a core).
num_workers=$([ "$parallel_training" = true ] && echo 0 || echo 1)
train_args=(--num-epochs "$num_epochs" --model-preset "$model_preset" --lang-dir "$lang_dir"
  --max-duration "$max_duration" --num-workers "$num_workers" --average-period 10 --log-interval 20
  "${extra_train[@]}")

teacher_cmd=(./transducer_teacher/train.py --exp-dir transducer_teacher/exp "${train_args[@]}")
baseline_cmd=(./transducer_streaming/train.py --exp-dir transducer_streaming/exp "${train_args[@]}")
run_stage1=$([ $stage -le 1 ] && [ $stop_stage -ge 1 ] && echo 1 || true)
run_stage2=$([ $stage -le 2 ] && [ $stop_stage -ge 2 ] && echo 1 || true)
if [ "$parallel_training" = true ] && [ -n "$run_stage1" ] && [ -n "$run_stage2" ]; then
  log "Stages 1 and 2: teacher and streaming baseline side by side (logs: */exp/train.log)"
  mkdir -p transducer_teacher/exp transducer_streaming/exp
  { printf 'OMP_NUM_THREADS=1 '; printf '%q ' "${teacher_cmd[@]}"; echo '&'; } >> "$commands"
  { printf 'OMP_NUM_THREADS=1 '; printf '%q ' "${baseline_cmd[@]}"; echo '&'; echo wait; } >> "$commands"
  OMP_NUM_THREADS=1 "${teacher_cmd[@]}" > transducer_teacher/exp/train.log 2>&1 & teacher_pid=$!
  OMP_NUM_THREADS=1 "${baseline_cmd[@]}" > transducer_streaming/exp/train.log 2>&1 & baseline_pid=$!
  status=0
  wait $teacher_pid || { echo "teacher training failed: see transducer_teacher/exp/train.log" >&2; status=1; }
  wait $baseline_pid || { echo "baseline training failed: see transducer_streaming/exp/train.log" >&2; status=1; }
  [ $status = 0 ] || exit 1
else
  if [ -n "$run_stage1" ]; then
    log "Stage 1: train the full-context teacher"
    run_logged "${teacher_cmd[@]}"
  fi
  if [ -n "$run_stage2" ]; then
    log "Stage 2: train the streaming baseline"
    run_logged "${baseline_cmd[@]}"
  fi
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: decode"
  common=(--epoch "$num_epochs" --avg "$avg" --lang-dir "$lang_dir" --max-duration 300 --num-workers 1)
  for method in "greedy_search --max-sym-per-frame 1" "greedy_search --max-sym-per-frame 3" \
                "modified_beam_search --beam-size 4"; do
    # shellcheck disable=SC2086
    run_logged ./transducer_teacher/decode.py --exp-dir transducer_teacher/exp "${common[@]}" \
      --decoding-method $method
    # shellcheck disable=SC2086
    run_logged ./transducer_streaming/decode.py --exp-dir transducer_streaming/exp "${common[@]}" \
      --decoding-method $method --chunk-size "$decode_chunk" --left-context "$decode_left_context"
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: teacher forced alignment of the test sets"
  run_logged ./transducer_teacher/align.py --exp-dir transducer_teacher/exp --epoch "$num_epochs" \
    --avg "$avg" --lang-dir "$lang_dir" --parts "test-clean test-other"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: chunk-wise recognition from audio"
  for method in greedy_search modified_beam_search; do
    run_logged ./transducer_streaming/streaming_decode.py --exp-dir transducer_streaming/exp \
      --epoch "$num_epochs" --avg "$avg" --lang-dir "$lang_dir" --decoding-method "$method" \
      --chunk-size "$decode_chunk" --left-context "$decode_left_context" --num-threads 1
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: RESULTS.md"
  ./local/write_results.py --commands "$commands" --lang-dir "$lang_dir" --output RESULTS.md
  cat RESULTS.md
fi
