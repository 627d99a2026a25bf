#!/usr/bin/env bash
# The whole recipe, stage by stage, on the embedded corpus by default: teacher, streaming
# baseline, two-stage distillation, decoding and the results table.
#
# Usage:
#   ./run.sh                        # everything, embedded corpus, default profile
#   ./run.sh --profile tiny         # every stage on a few minutes of audio (smoke test)
#   ./run.sh --ablations true --seeds 2   # add the ablation rows and a second seed
#   ./run.sh --stage 6 --stop-stage 7     # only some stages
#   ./run.sh --corpus librispeech --dl-dir /data --model-preset paper --num-epochs 30
#   ./run.sh --corpus librispeech --dl-dir /data --model-preset paper --num-epochs 30 \
#     --train-parts "train-clean-100 train-clean-360 train-other-500" --num-gpus 8  # 960 h
#
# Options (defaults in brackets):
#   --profile tiny|default    [default] corpus size and matching model/training settings
#   --corpus, --dl-dir, --nj  passed to prepare.sh (see ./prepare.sh --help)
#   --model-preset P          [tiny for the tiny profile, else small]; zipformer-tiny,
#                             zipformer-small: the Zipformer encoder
#   --vocab-size V            [200 for tiny, 500 for --corpus librispeech, else 100] BPE pieces
#   --train-parts "P1 P2"     [train-clean-100] training parts (prepared in stage 0)
#   --num-gpus N              [0] N > 1: every training runs under torchrun with N processes
#                             (one GPU each, NCCL), one training after the other
#   --num-epochs N            [6; 2 for tiny]   epochs of the teacher and the baseline
#   --avg N                   [2; 1 for tiny]   epochs averaged for decoding
#   --kd-epochs N             [1]  epochs of each distillation stage; single-stage ablations
#                             and the continued baseline get twice as many, so every
#                             student row has had the same number of updates after the baseline
#   --max-duration S          [100; 40 for tiny] seconds of audio per batch
#   --decode-chunk N          [8]  streaming decoding chunk, encoder frames (8 = 320 ms)
#   --decode-left-context N   [32] streaming decoding left context, encoder frames
#   --teacher-targets online|exported [online; exported for tiny] teacher encoder outputs
#                             computed in each distillation step, or once (stage 6) and stored
#                             with the cuts
#   --ablations true|false    [false] also train the ablations (stage 8)
#   --seeds N                 [1] train the baseline and the full method with N seeds (stage 8)
#   --chunk-conv true|false   [false] also train a baseline with the chunk-aware convolution
#                             (--conv-context chunk) and the method on top of it (stage 8),
#                             decode them at every sweep chunk (stage 9) and export the method
#                             (stage 10)
#   --zipformer true|false    [false] also train a Zipformer teacher and streaming baseline
#                             (--zipformer-preset, --zipformer-epochs), then the method with the
#                             Zipformer teacher and student beside its control (stage 8);
#                             decode (stage 9) and export them (stage 10)
#   --zipformer-preset P      [zipformer-small; zipformer-tiny for tiny]
#   --zipformer-epochs N      [3; 2 for tiny] epochs of the Zipformer teacher and baseline; a
#                             zipformer-small step (fp32, what --precision auto picks for it)
#                             costs about 2.1-2.4x a small one (bf16) on an Intel Xeon with
#                             AMX (benchmarks/results/training_zipformer_xeon_amx.md), so 3
#                             epochs cost about 1.1-1.2x the Conformer's 6 (2: 0.7-0.8x);
#                             RESULTS.md's Zipformer section gives a run's own ratio
#   --zipformer-optimizer O   [scaled-adam] adamw or scaled-adam, for the Zipformer teacher
#                             and baseline (their distillation stages and control fine-tune
#                             with AdamW as the Conformer's do)
#   --zipformer-base-lr LR    [0.045 for scaled-adam; the profile's AdamW rate for adamw]
#                             optimizer and rate selected on dev-clean: RESULTS-optimizer.md
#                             (optimizer_study.sh)
#   --zipformer-avg N         [1] epochs averaged for decoding the Zipformer and for the
#                             checkpoints its students start from; selected on dev-clean
#                             (README, Zipformer: a 3-epoch Zipformer still improves fast, so
#                             averaging in its second epoch costs it)
#   --parallel-training B     [true] run trainings side by side, and decodes and exports two
#                             at a time, one CPU thread each (on a 2-core CPU this beats one
#                             after the other with two threads)
#   --stage N / --stop-stage N [0 / 11]
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
#   6  distillation stage 1 (hidden-layer MSE) -> kd_stage1_hidden/exp, beside the control:
#      the baseline trained on for as many updates without a teacher -> transducer_streaming/exp-continued
#   7  distillation stage 2 (adaptive output KD) -> kd_stage2_output/exp
#   8  ablations (--ablations true), extra seeds (--seeds N), chunk-aware convolution
#      (--chunk-conv true): transducer_streaming/exp-chunk-conv, kd_stage{1,2}_*/exp-chunk-conv;
#      Zipformer (--zipformer true): transducer_{teacher,streaming}/exp-zipformer, then
#      kd_stage{1,2}_*/exp-zipformer and transducer_streaming/exp-zipformer-continued
#   9  decode every student (greedy, beam; chunk sizes 160/320/640 ms for the baseline and the
#      method) and the method chunk-wise from audio; with --zipformer true also the Zipformer
#      checkpoints at the Conformer's training time (local/equal_time_epoch.py), greedy
#   10 export the distilled student (streaming) and the teacher (offline) to sherpa-onnx,
#      fp32 and int8, check ONNX against PyTorch, decode the test sets with sherpa-onnx
#   11 RESULTS.md and plots (local/write_results.py); prints the distillation table
set -eou pipefail

profile=default
corpus=""
dl_dir=""
nj=2
model_preset=""
vocab_size=""
train_parts=""
num_gpus=0
num_epochs=""
avg=""
kd_epochs=1
max_duration=""
decode_chunk=8
decode_left_context=32
teacher_targets=""
ablations=false
seeds=1
chunk_conv=false
zipformer=false
zipformer_preset=""
zipformer_epochs=""
zipformer_optimizer=scaled-adam
zipformer_base_lr=""
zipformer_avg=1
parallel_training=true
stage=0
stop_stage=11

cd "$(dirname "$0")"
. local/parse_options.sh
case "$chunk_conv" in
  true|false) ;;
  *) echo "run.sh: --chunk-conv takes true or false, got '$chunk_conv'" >&2; exit 1 ;;
esac
case "$zipformer" in
  true|false) ;;
  *) echo "run.sh: --zipformer takes true or false, got '$zipformer'" >&2; exit 1 ;;
esac
case "$zipformer_optimizer" in
  adamw|scaled-adam) ;;
  *) echo "run.sh: --zipformer-optimizer takes adamw or scaled-adam, got '$zipformer_optimizer'" >&2; exit 1 ;;
esac
[[ "$zipformer_avg" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --zipformer-avg takes a positive whole number, got '$zipformer_avg'" >&2; exit 1; }
. local/setup_env.sh

. local/profile_settings.sh
[ "$num_gpus" -gt 1 ] && parallel_training=false
# Every command that produces a result is logged, per stage, under exp-commands/;
# local/write_results.py lists them in RESULTS.md.
commands_dir=exp-commands
mkdir -p "$commands_dir"
commands=/dev/null
current_stage=""; stage_started=0
end_stage() {  # the wall time of the stage that is ending, for RESULTS.md
  [ -n "$current_stage" ] && echo $(( $(date +%s) - stage_started )) > "$commands_dir/$current_stage.seconds"
  current_stage=""
}
begin_stage() {  # N name: log it and start this stage's command list afresh
  end_stage
  log "Stage $1: $2"
  current_stage=$(printf '%02d' "$1"); stage_started=$(date +%s)
  commands=$commands_dir/$current_stage.txt
  : > "$commands"; rm -f "$commands_dir/$current_stage.seconds"
}
record() {  # a command line, quoted so that it can be pasted back
  printf '%q ' "$@" | sed 's/ $//' >> "$commands"; echo >> "$commands"
}
run_logged() { record "$@"; "$@"; }

# Trainings run side by side in "lanes", one CPU thread each (local/lanes.sh: in_lane,
# wait_lanes, and train <log> <command...>, which records the command for RESULTS.md).
. local/lanes.sh

mapfile -t common_train < <(train_options "$model_preset")
train_args=("${common_train[@]}" --num-epochs "$num_epochs" "${extra_train[@]}")
kd_avg=$(( kd_epochs < avg ? kd_epochs : avg ))
teacher=(--teacher-exp-dir transducer_teacher/exp --teacher-epoch "$num_epochs" --teacher-avg "$avg")
from_baseline=(--init-from transducer_streaming/exp --init-epoch "$num_epochs" --init-avg "$avg")
from_stage1=(--init-from kd_stage1_hidden/exp --init-epoch "$kd_epochs" --init-avg "$kd_avg")
kd_args=("${common_train[@]}" "${extra_kd[@]}" "${teacher[@]}" --teacher-targets "$teacher_targets")
[ "$teacher_targets" = exported ] && kd_args+=(--manifest-dir data/teacher_targets)
one_stage=(--num-epochs "$kd_epochs")
two_stages=(--num-epochs $(( 2 * kd_epochs )))
# The method is the stage scripts' defaults (kd_stage1_hidden/train.py: MSE 0.3 through a
# fitted projection; kd_stage2_output/train.py: per-token Hinton KD 0.1, entropy floor 0.5):
# the commands below pass only what an ablation changes. README "What we tried" has the
# trials that chose them.
with_output_kd=(--output-kd-scale 0.1)              # stage 2's term, added to stage 1 (joint)
fixed_temperature=(--kd-alpha-mode fixed --kd-temperature 2.0)  # instead of the adaptive rule

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  begin_stage 0 "data"
  prepare_args=(--profile "$profile" --nj "$nj")
  [ -n "$corpus" ] && prepare_args+=(--corpus "$corpus")
  [ -n "$dl_dir" ] && prepare_args+=(--dl-dir "$dl_dir")
  [ -n "$vocab_size" ] && prepare_args+=(--vocab-sizes "$vocab_size")
  [ -n "$train_parts" ] && prepare_args+=(--parts "$train_parts dev-clean test-clean test-other")
  run_logged ./prepare.sh "${prepare_args[@]}"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 1 ]; then
  begin_stage 1 "teacher and streaming baseline"
  [ $stage -le 1 ] && in_lane teacher train transducer_teacher/exp/train.log \
    ./transducer_teacher/train.py --exp-dir transducer_teacher/exp "${train_args[@]}"
  [ $stop_stage -ge 2 ] && in_lane baseline train transducer_streaming/exp/train.log \
    ./transducer_streaming/train.py --exp-dir transducer_streaming/exp "${train_args[@]}"
  wait_lanes
fi

# Features computed from the audio as a deployed recogniser does (kaldi-native-fbank), not
# read back from the lossy lilcom store: simulated streaming then sees exactly the input of
# chunk-wise recognition, so the two can be compared hypothesis by hypothesis.
decode_feats=(--on-the-fly-feats true)
decode_common=(--epoch "$num_epochs" --avg "$avg" --lang-dir "$lang_dir" --max-duration 300 --num-workers 1 "${decode_feats[@]}")
streaming_mode=(--chunk-size "$decode_chunk" --left-context "$decode_left_context")
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  begin_stage 3 "decode the teacher and the baseline"
  # Two at a time (local/lanes.sh), the slowest (beam search) first.
  for method in "modified_beam_search --beam-size 4" "greedy_search --max-sym-per-frame 1" \
                "greedy_search --max-sym-per-frame 3"; do
    # shellcheck disable=SC2086
    queue_job ./transducer_teacher/decode.py --exp-dir transducer_teacher/exp "${decode_common[@]}" \
      --decoding-method $method
    # shellcheck disable=SC2086
    queue_job ./transducer_streaming/decode.py --exp-dir transducer_streaming/exp "${decode_common[@]}" \
      --decoding-method $method "${streaming_mode[@]}"
  done
  run_queued_jobs
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  begin_stage 4 "teacher forced alignment of the test sets"
  run_logged ./transducer_teacher/align.py --exp-dir transducer_teacher/exp --epoch "$num_epochs" \
    --avg "$avg" --lang-dir "$lang_dir" --parts "test-clean test-other"
fi

chunkwise() {  # exp dir, epoch, avg, method [, chunk]: queue chunk-wise recognition from
  # audio, at the decoding chunk or at CHUNK with 4 x CHUNK of left context (the sweep's)
  [ -f "$1/epoch-$2.pt" ] || return 0  # a row of an option that was not trained
  local mode=("${streaming_mode[@]}")
  [ -n "${5:-}" ] && mode=(--chunk-size "$5" --left-context $(( 4 * $5 )))
  queue_job ./transducer_streaming/streaming_decode.py --exp-dir "$1" --epoch "$2" --avg "$3" \
    --lang-dir "$lang_dir" --decoding-method "$4" "${mode[@]}" --num-threads 1 --skip-existing true
}
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  begin_stage 5 "chunk-wise recognition from audio"
  for method in greedy_search modified_beam_search; do
    chunkwise transducer_streaming/exp "$num_epochs" "$avg" "$method"
  done
  run_queued_jobs
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  begin_stage 6 "distillation stage 1 (hidden MSE), beside the continued baseline"
  if [ "$teacher_targets" = exported ]; then
    run_logged ./kd_teacher_export/export_targets.py --exp-dir transducer_teacher/exp \
      --epoch "$num_epochs" --avg "$avg" --parts "train-clean-100 dev-clean" \
      --output-dir data/teacher_targets --max-duration 300
  fi
  # The control: the baseline trained on for as many updates as stages 1 + 2, no teacher.
  in_lane continued train transducer_streaming/exp-continued/train.log ./transducer_streaming/train.py \
    --exp-dir transducer_streaming/exp-continued "${common_train[@]}" "${extra_kd[@]}" \
    "${two_stages[@]}" "${from_baseline[@]}"
  in_lane stage1 train kd_stage1_hidden/exp/train.log ./kd_stage1_hidden/train.py \
    --exp-dir kd_stage1_hidden/exp "${kd_args[@]}" "${one_stage[@]}" "${from_baseline[@]}"
  wait_lanes stage1
  [ $stop_stage -ge 7 ] || wait_lanes
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  begin_stage 7 "distillation stage 2 (adaptive output KD)"
  in_lane stage2 train kd_stage2_output/exp/train.log ./kd_stage2_output/train.py \
    --exp-dir kd_stage2_output/exp "${kd_args[@]}" "${one_stage[@]}" "${from_stage1[@]}"
  wait_lanes  # and the continued baseline, if it still runs
fi

# Two ablation lanes beside the seed lane: 2E epochs, and 2E + E.
ablation_lane_single_stage() {
  train kd_stage2_output/exp-only-fixed/train.log ./kd_stage2_output/train.py \
    --exp-dir kd_stage2_output/exp-only-fixed "${kd_args[@]}" "${two_stages[@]}" \
    "${from_baseline[@]}" "${fixed_temperature[@]}"
}
ablation_lane_joint_and_fixed() {
  train kd_stage1_hidden/exp-joint/train.log ./kd_stage1_hidden/train.py \
    --exp-dir kd_stage1_hidden/exp-joint "${kd_args[@]}" "${two_stages[@]}" \
    "${from_baseline[@]}" "${with_output_kd[@]}"
  train kd_stage2_output/exp-fixed/train.log ./kd_stage2_output/train.py \
    --exp-dir kd_stage2_output/exp-fixed "${kd_args[@]}" "${one_stage[@]}" "${from_stage1[@]}" \
    "${fixed_temperature[@]}"
}
student_lane() {  # name, options...: a baseline of its own (exp-NAME), then stage 1 and
  # stage 2 on it, every training with the options (the only difference from the main rows)
  local name=$1; shift
  train transducer_streaming/exp-$name/train.log ./transducer_streaming/train.py \
    --exp-dir transducer_streaming/exp-$name "${train_args[@]}" "$@"
  train kd_stage1_hidden/exp-$name/train.log ./kd_stage1_hidden/train.py \
    --exp-dir kd_stage1_hidden/exp-$name "${kd_args[@]}" "${one_stage[@]}" "$@" \
    --init-from transducer_streaming/exp-$name --init-epoch "$num_epochs" --init-avg "$avg"
  train kd_stage2_output/exp-$name/train.log ./kd_stage2_output/train.py \
    --exp-dir kd_stage2_output/exp-$name "${kd_args[@]}" "${one_stage[@]}" "$@" \
    --init-from kd_stage1_hidden/exp-$name --init-epoch "$kd_epochs" --init-avg "$kd_avg"
}
seed_lane() { student_lane "seed$1" --seed "$1"; }  # seed: its own baseline and method
# The convolution reads the rest of its chunk (issue 16): the same recipe, one option.
chunk_conv_lane() { student_lane chunk-conv --conv-context chunk; }
# Zipformer (issue 19): its own teacher and baseline (the same recipe, another encoder),
# then the method with that teacher and student beside its control, as in stages 6-7.
mapfile -t zipformer_train < <(train_options "$zipformer_preset")
zipformer_avg=$(( zipformer_epochs < zipformer_avg ? zipformer_epochs : zipformer_avg ))
mapfile -t zipformer_optimizer_args < <(optimizer_options "run.sh: --zipformer-optimizer" \
  "$zipformer_optimizer" "$zipformer_base_lr")
[ ${#zipformer_optimizer_args[@]} -gt 0 ] || exit 1
zipformer_from_baseline=(--init-from transducer_streaming/exp-zipformer
  --init-epoch "$zipformer_epochs" --init-avg "$zipformer_avg")
# Online teacher targets: the exported ones (stage 6) are the Conformer teacher's.
zipformer_kd_args=("${zipformer_train[@]}" "${extra_kd[@]}"
  --teacher-exp-dir transducer_teacher/exp-zipformer --teacher-epoch "$zipformer_epochs"
  --teacher-avg "$zipformer_avg" --teacher-targets online)
zipformer_from_scratch_lane() {  # teacher|streaming
  train transducer_$1/exp-zipformer/train.log ./transducer_$1/train.py \
    --exp-dir transducer_$1/exp-zipformer "${zipformer_train[@]}" \
    --num-epochs "$zipformer_epochs" "${extra_train[@]}" "${zipformer_optimizer_args[@]}"
}
zipformer_method_lane() {
  train kd_stage1_hidden/exp-zipformer/train.log ./kd_stage1_hidden/train.py \
    --exp-dir kd_stage1_hidden/exp-zipformer "${zipformer_kd_args[@]}" "${one_stage[@]}" \
    "${zipformer_from_baseline[@]}"
  train kd_stage2_output/exp-zipformer/train.log ./kd_stage2_output/train.py \
    --exp-dir kd_stage2_output/exp-zipformer "${zipformer_kd_args[@]}" "${one_stage[@]}" \
    --init-from kd_stage1_hidden/exp-zipformer --init-epoch "$kd_epochs" --init-avg "$kd_avg"
}
zipformer_control_lane() {
  train transducer_streaming/exp-zipformer-continued/train.log ./transducer_streaming/train.py \
    --exp-dir transducer_streaming/exp-zipformer-continued "${zipformer_train[@]}" \
    "${extra_kd[@]}" "${two_stages[@]}" "${zipformer_from_baseline[@]}"
}
if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  begin_stage 8 "ablations ($ablations), seeds ($seeds), chunk-aware convolution ($chunk_conv)"
  [ "$ablations" = true ] && in_lane ablations-1 ablation_lane_single_stage
  [ "$ablations" = true ] && in_lane ablations-2 ablation_lane_joint_and_fixed
  [ "$chunk_conv" = true ] && in_lane chunk-conv chunk_conv_lane
  [ "$zipformer" = true ] && in_lane zipformer-teacher zipformer_from_scratch_lane teacher
  [ "$zipformer" = true ] && in_lane zipformer-baseline zipformer_from_scratch_lane streaming
  # One lane per seed: the seed lanes are the long pole (a baseline from scratch each), and
  # lanes that queue behind one another would leave a core idle once the ablations end.
  for seed in $(seq 2 "$seeds"); do in_lane seed-$seed seed_lane "$seed"; done
  wait_lanes
  if [ "$zipformer" = true ]; then  # these need the Zipformer teacher and baseline
    in_lane zipformer-method zipformer_method_lane
    in_lane zipformer-control zipformer_control_lane
    wait_lanes
  fi
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  begin_stage 9 "decode the students"
  # Everything below is queued and runs two at a time (local/lanes.sh).
  decode_student() {  # exp dir, epoch, avg, extra decode.py options...
    local exp=$1 epoch=$2 a=$3; shift 3
    [ -f "$exp/epoch-$epoch.pt" ] || return 0
    local methods=("greedy_search" "modified_beam_search --beam-size 4")
    case "$exp" in *-seed*) methods=("greedy_search") ;; esac  # beam: first seed only
    for method in "${methods[@]}"; do
      # shellcheck disable=SC2086
      queue_job ./transducer_streaming/decode.py --exp-dir "$exp" --epoch "$epoch" --avg "$a" \
        --lang-dir "$lang_dir" --max-duration 300 --num-workers 1 --decoding-method $method \
        --test-sets "test-clean test-other" --skip-existing true "${decode_feats[@]}" "$@"
    done
  }
  decode_student kd_stage1_hidden/exp "$kd_epochs" "$kd_avg" "${streaming_mode[@]}"
  decode_student kd_stage2_output/exp "$kd_epochs" "$kd_avg" "${streaming_mode[@]}"
  decode_student transducer_streaming/exp-continued $(( 2 * kd_epochs )) "$kd_avg" "${streaming_mode[@]}"
  decode_student kd_stage2_output/exp-only-fixed $(( 2 * kd_epochs )) "$kd_avg" "${streaming_mode[@]}"
  decode_student kd_stage1_hidden/exp-joint $(( 2 * kd_epochs )) "$kd_avg" "${streaming_mode[@]}"
  decode_student kd_stage2_output/exp-fixed "$kd_epochs" "$kd_avg" "${streaming_mode[@]}"
  for seed in $(seq 2 "$seeds"); do
    decode_student transducer_streaming/exp-seed$seed "$num_epochs" "$avg" "${streaming_mode[@]}"
    decode_student kd_stage2_output/exp-seed$seed "$kd_epochs" "$kd_avg" "${streaming_mode[@]}"
  done
  decode_student transducer_streaming/exp-chunk-conv "$num_epochs" "$avg" "${streaming_mode[@]}"
  decode_student kd_stage2_output/exp-chunk-conv "$kd_epochs" "$kd_avg" "${streaming_mode[@]}"
  decode_student transducer_streaming/exp-zipformer "$zipformer_epochs" "$zipformer_avg" "${streaming_mode[@]}"
  decode_student transducer_streaming/exp-zipformer-continued $(( 2 * kd_epochs )) "$kd_avg" "${streaming_mode[@]}"
  decode_student kd_stage2_output/exp-zipformer "$kd_epochs" "$kd_avg" "${streaming_mode[@]}"
  if [ -f "transducer_teacher/exp-zipformer/epoch-$zipformer_epochs.pt" ]; then
    for method in "greedy_search --max-sym-per-frame 1" "modified_beam_search --beam-size 4"; do
      # shellcheck disable=SC2086
      queue_job ./transducer_teacher/decode.py --exp-dir transducer_teacher/exp-zipformer \
        --epoch "$zipformer_epochs" --avg "$zipformer_avg" --lang-dir "$lang_dir" --max-duration 300 \
        --num-workers 1 "${decode_feats[@]}" --decoding-method $method --skip-existing true
    done
  fi
  # The Zipformer at the Conformer's training time (RESULTS.md): the epoch whose end came
  # closest to the Conformer's training minutes, greedy, when it is not the last epoch.
  for role in teacher streaming; do
    exp=transducer_$role/exp-zipformer
    [ -f "$exp/train.log" ] && [ -f "transducer_$role/exp/train.log" ] || continue
    epoch=$(./local/equal_time_epoch.py "transducer_$role/exp/train.log" "$exp/train.log")
    [ -n "$epoch" ] && [ "$epoch" != "$zipformer_epochs" ] || continue
    mode=(--max-sym-per-frame 1)
    [ "$role" = streaming ] && mode=("${streaming_mode[@]}" --test-sets "test-clean test-other")
    queue_job "./transducer_$role/decode.py" --exp-dir "$exp" --epoch "$epoch" \
      --avg $(( epoch < avg ? epoch : avg )) --lang-dir "$lang_dir" --max-duration 300 \
      --num-workers 1 "${decode_feats[@]}" --decoding-method greedy_search "${mode[@]}" \
      --skip-existing true
  done
  # WER against chunk size (the plot), greedy, for the baseline and the method (and their
  # chunk-aware convolution twins with --chunk-conv true).
  for chunk in $sweep_chunks; do
    [ "$chunk" = "$decode_chunk" ] && continue
    for model in "transducer_streaming/exp $num_epochs $avg" "kd_stage2_output/exp $kd_epochs $kd_avg" \
                 "transducer_streaming/exp-chunk-conv $num_epochs $avg" \
                 "kd_stage2_output/exp-chunk-conv $kd_epochs $kd_avg" \
                 "transducer_streaming/exp-zipformer $zipformer_epochs $zipformer_avg" \
                 "kd_stage2_output/exp-zipformer $kd_epochs $kd_avg"; do
      read -r exp epoch a <<< "$model"
      [ -f "$exp/epoch-$epoch.pt" ] || continue
      queue_job ./transducer_streaming/decode.py --exp-dir "$exp" --epoch "$epoch" --avg "$a" \
        --lang-dir "$lang_dir" --max-duration 300 --num-workers 1 --decoding-method greedy_search \
        --test-sets "test-clean test-other" --chunk-size "$chunk" --left-context $(( 4 * chunk )) \
        --skip-existing true "${decode_feats[@]}"
    done
    # Real-time factor and latency from audio at this chunk: the causal and the chunk-aware
    # baselines (the convolution's cost is per frame, so these two say it for the method too).
    chunkwise transducer_streaming/exp "$num_epochs" "$avg" greedy_search "$chunk"
    chunkwise transducer_streaming/exp-chunk-conv "$num_epochs" "$avg" greedy_search "$chunk"
  done
  chunkwise kd_stage2_output/exp "$kd_epochs" "$kd_avg" greedy_search
  chunkwise transducer_streaming/exp-chunk-conv "$num_epochs" "$avg" greedy_search
  chunkwise kd_stage2_output/exp-chunk-conv "$kd_epochs" "$kd_avg" greedy_search
  chunkwise transducer_streaming/exp-zipformer "$zipformer_epochs" "$zipformer_avg" greedy_search
  chunkwise kd_stage2_output/exp-zipformer "$kd_epochs" "$kd_avg" greedy_search
  run_queued_jobs
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  begin_stage 10 "export to sherpa-onnx, check, decode with sherpa-onnx"
  # The method, and its chunk-aware convolution and Zipformer twins where they were trained,
  # and the teachers: one job per model, two jobs at a time (local/lanes.sh).
  for exp in kd_stage2_output/exp kd_stage2_output/exp-chunk-conv kd_stage2_output/exp-zipformer; do
    [ -f "$exp/epoch-$kd_epochs.pt" ] || continue
    student=(--exp-dir "$exp" --epoch "$kd_epochs" --avg "$kd_avg")
    queue_job ./transducer_streaming/export_onnx.py "${student[@]}" --lang-dir "$lang_dir" "${streaming_mode[@]}" \
      ';' ./transducer_streaming/onnx_check.py "${student[@]}" "${streaming_mode[@]}" \
      ';' ./transducer_streaming/sherpa_decode.py "${student[@]}" --lang-dir "$lang_dir" \
      "${streaming_mode[@]}" --test-sets "test-clean test-other"
  done
  teacher_job() {  # exp dir, epoch, avg
    local files=(--exp-dir "$1" --epoch "$2" --avg "$3" --lang-dir "$lang_dir")
    queue_job ./transducer_teacher/export_onnx.py "${files[@]}" \
      ';' ./transducer_teacher/sherpa_decode.py "${files[@]}" --test-sets "test-clean test-other"
  }
  teacher_job transducer_teacher/exp "$num_epochs" "$avg"
  if [ -f "transducer_teacher/exp-zipformer/epoch-$zipformer_epochs.pt" ]; then
    teacher_job transducer_teacher/exp-zipformer "$zipformer_epochs" "$zipformer_avg"
  fi
  run_queued_jobs
fi

if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  begin_stage 11 "RESULTS.md"
  ./local/write_results.py --commands-dir "$commands_dir" --lang-dir "$lang_dir" \
    --kd-epochs "$kd_epochs" --decode-chunk "$decode_chunk" \
    --decode-left-context "$decode_left_context" --output RESULTS.md
  cat RESULTS.md
  log "The distillation table (RESULTS.md):"
  sed -n '/^## Distillation/,/^## /p' RESULTS.md | sed '$d'
fi
