#!/usr/bin/env bash
# The distillation study (issue 17): converged baselines, the method in two designs
# (fine-tuning a converged baseline; from scratch for the baseline's updates), a stronger
# teacher, several seeds. Every choice is made on dev-clean: the distillation weights and
# entropy floor by a search (stage 3), the epochs of each training and the checkpoint a
# stage starts from by one rule (local/train_until_converged.py: stop once an epoch
# improves the best dev WER by less than 2% relative; trainings from random weights not
# before run.sh's --num-epochs); the test sets are decoded once, for the final table. A
# training that starts from another continues it (--init-state training), so the method
# and its control differ by the loss alone. Outputs under study/; resumable stage by stage
# (trainings resume from their checkpoints, decodes skip what exists).
#
# Usage:
#   ./study.sh                          # the whole study on the embedded corpus (hours)
#   ./study.sh --profile tiny           # every stage on the tiny corpus (a smoke test)
#   ./study.sh --stage 3 --stop-stage 3 # one stage
#   ./local/study_progress.py           # where it stands (any time beside it; in the venv)
#
# Options (defaults in brackets):
#   --profile tiny|default     [default] corpus and model/training settings (run.sh's)
#   --seeds N                  [3] seeds of every streaming model
#   --max-epochs N             [30; 3 for tiny] budget of the teachers and the baselines
#   --kd-max-epochs N          [8; 2 for tiny] budget of each distillation stage
#   --strong-teacher-preset P  [default; small for tiny] the stronger teacher's model preset
#                              (wider than the student: hidden KD goes through a projection)
#   --hidden-kd-scales "A B"   ["0.1 0.3 1.0"] stage 3's candidates for stage 1's MSE weight
#   --output-kd-scales "A B"   ["0.03 0.1 0.3"] ... for stage 2's KL weight
#   --entropy-floors "A B"     ["0.25 0.5 1.0"] ... for the adaptive smoothing's entropy floor
#   --select-epochs N          [3; 1 for tiny] epochs of each stage-3 candidate
#   --optimizer O              [scaled-adam] adamw or scaled-adam, for every training from
#                              random weights (teachers, baselines, from-scratch stage 1);
#                              chosen on dev-clean (RESULTS-optimizer-conformer.md)
#   --base-lr LR               [the trainer's 0.045 for scaled-adam; the profile's 0.001 for
#                              adamw] its peak rate
#   --parallel-training B      [true] trainings side by side, test decodes two at a time, one
#                              CPU thread each
#   --stage N / --stop-stage N [0 / 7]
#
# Stages:
#   0  data: prepare.sh (the embedded corpus: 2,000-utterance test sets since version 3)
#   1  teachers until converged: study/teacher (run.sh's preset), study/teacher-strong
#      (they train beside stage 2's baselines when both stages run)
#   2  streaming baselines until converged, one per seed (study/baseline-seedS); then every
#      seed trained on to the slowest seed's epochs E, so all have the same updates
#   3  the distillation settings, chosen on dev-clean with seed 1 and run.sh's teacher,
#      each candidate continuing baseline epoch E for --select-epochs epochs
#      (study/select/): stage 1's weight, then stage 2's weight at the method's entropy
#      floor (from the best stage-1 run), then the floor; the choice in
#      study/selected-kd.tsv, used by stages 4 and 5 for every teacher and seed
#   4  fine-tuning design, per teacher T and seed: stage 1 from baseline epoch E until
#      converged (study/ft1-T-seedS), stage 2 from its best epoch until converged
#      (study/ft2-T-seedS); the control, the baseline trained on without a teacher
#      (study/control-seedS), for as many epochs as the longest method, each epoch decoded
#   5  from-scratch design, per seed (run.sh's teacher): stage 1 from random weights until
#      converged, at most E - 1 epochs (study/scratch1-seedS), then stage 2 from its best
#      epoch for the rest of E epochs in all (study/scratch2-seedS)
#   6  decode the test sets with every final model (greedy; beam search for the first seed)
#   7  RESULTS.md (local/write_results.py: written anew with the study's section beside
#      run.sh's when run.sh's outputs are here, else only its study section replaced) and
#      learning-curves.png
set -eou pipefail

profile=default
seeds=3
max_epochs=""
kd_max_epochs=""
strong_teacher_preset=""
select_epochs=""
hidden_kd_scales="0.1 0.3 1.0"
output_kd_scales="0.03 0.1 0.3"
entropy_floors="0.25 0.5 1.0"
optimizer=scaled-adam
base_lr=""
parallel_training=true
stage=0
stop_stage=7
# Read by local/profile_settings.sh (run.sh's options the study does not change).
corpus=""; model_preset=""; vocab_size=""; train_parts=""; num_epochs=""; avg=""
max_duration=""; teacher_targets=""; zipformer_preset=""; zipformer_epochs=""
decode_chunk=8; decode_left_context=32; num_gpus=0

cd "$(dirname "$0")"
. local/parse_options.sh
. local/setup_env.sh
. local/profile_settings.sh
if [ "$profile" = tiny ]; then
  max_epochs=${max_epochs:-3}; kd_max_epochs=${kd_max_epochs:-2}; select_epochs=${select_epochs:-1}
  strong_teacher_preset=${strong_teacher_preset:-small}
else
  max_epochs=${max_epochs:-30}; kd_max_epochs=${kd_max_epochs:-8}; select_epochs=${select_epochs:-3}
  strong_teacher_preset=${strong_teacher_preset:-default}
fi
for n in "$seeds" "$max_epochs" "$kd_max_epochs" "$select_epochs"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "study.sh: '$n' is not a positive whole number (--seeds, --max-epochs, --kd-max-epochs, --select-epochs)" >&2; exit 1; }
done
for option in hidden_kd_scales output_kd_scales entropy_floors; do
  [ -n "${!option}" ] || { echo "study.sh: --${option//_/-} is empty; give at least one value" >&2; exit 1; }
  for v in ${!option}; do
    [[ "$v" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "study.sh: --${option//_/-}: '$v' is not a non-negative number" >&2; exit 1; }
  done
done
[ "$max_epochs" -ge 2 ] || { echo "study.sh: --max-epochs must be at least 2 (stage 1 and 2 of the from-scratch design)" >&2; exit 1; }

mapfile -t optimizer_args < <(optimizer_options "study.sh: --optimizer" "$optimizer" "$base_lr")
[ ${#optimizer_args[@]} -gt 0 ] || exit 1
# Trainings from random weights run at least run.sh's budget (--num-epochs: 6, not yet
# converged there) before the 2% rule may stop them: with ScaledAdam the first epochs sit on
# a plateau (dev-clean 91.22, 94.49, then 40.23: RESULTS-optimizer-conformer.md) where the
# rule would stop a model that has not started to learn.
min_epochs=$(( num_epochs < max_epochs ? num_epochs : max_epochs ))
# Stage 3 searches the other settings at the method's own entropy floor.
method_floor=$(python -c 'from icefall_kd.distill.smoothing import SmoothingConfig as c; print(c().entropy_floor)')

commands_dir=study/commands
mkdir -p "$commands_dir"
commands=/dev/null
begin_stage() {  # N name
  log "Stage $1: $2"
  commands=$commands_dir/$(printf '%02d' "$1").txt
  : > "$commands"
}
record() { printf '%q ' "$@" | sed 's/ $//' >> "$commands"; echo >> "$commands"; }
run_logged() { record "$@"; "$@"; }
# The study's wall time (RESULTS.md sums it): one file per invocation, rewritten every
# minute while it runs, so a run that is killed (a session ending) still leaves its time to
# within a minute; "finished" once it ends normally.
mkdir -p study/run-time
run_started=$(date +%s)
run_time_file=study/run-time/$run_started-$$.tsv
run_commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
write_run_time() {  # status
  printf 'stages\tstarted\tlast_seen\tstatus\tcpus\tcommit\n%s-%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$stage" "$stop_stage" "$run_started" "$(date +%s)" "$1" "$(nproc)" "$run_commit" \
    > "$run_time_file.new" && mv "$run_time_file.new" "$run_time_file"  # never half written
}
write_run_time running
( while kill -0 $$ 2>/dev/null; do sleep 60; kill -0 $$ 2>/dev/null &&
  write_run_time "$(tail -n 1 "$run_time_file" | cut -f 4)"; done ) \
  > /dev/null 2>&1 < /dev/null &
run_time_ticker=$!
end_stage() {  # lanes.sh's exit trap calls it when the script ends without an error
  kill "$run_time_ticker" 2>/dev/null || true
  write_run_time finished
}
. local/lanes.sh

# Trainings from random weights: the profile's options, then the optimiser's (the last
# --base-lr wins).
from_scratch_train=("${extra_train[@]}" "${optimizer_args[@]}")
mapfile -t common_train < <(train_options "$model_preset")
mapfile -t strong_train < <(train_options "$strong_teacher_preset")
[ ${#common_train[@]} -gt 0 ] && [ ${#strong_train[@]} -gt 0 ] || exit 1
streaming_decode="./transducer_streaming/decode.py --lang-dir $lang_dir --max-duration 300 --num-workers 1 --on-the-fly-feats true --chunk-size $decode_chunk --left-context $decode_left_context"
full_decode="./transducer_teacher/decode.py --lang-dir $lang_dir --max-duration 300 --num-workers 1 --on-the-fly-feats true"

until_converged() {  # exp-dir, max epochs, min epochs, decode command, -- training command...
  local exp=$1 max=$2 min=$3 decode=$4; shift 4
  mkdir -p "$exp"
  train "$exp/train.log" ./local/train_until_converged.py --exp-dir "$exp" --max-epochs "$max" \
    --min-epochs "$min" --decode "$decode" -- "$@"
}
trained_to() {  # exp-dir, epochs, decode command, -- training command...: a fixed budget,
  # every epoch decoded on dev-clean for the learning curve
  local exp=$1 epochs=$2 decode=$3; shift 3
  mkdir -p "$exp"
  train "$exp/train.log" ./local/train_until_converged.py --exp-dir "$exp" --max-epochs "$epochs" \
    --min-epochs "$epochs" --summary budget.json --decode "$decode" -- "$@"
}
summary_field() {  # exp-dir, field [, summary file]: a number from its convergence summary
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" \
    "$1/${3:-convergence.json}" "$2"
}
teacher_dir() { [ "$1" = strong ] && echo study/teacher-strong || echo study/teacher; }
teacher_args() {  # teacher name: the distillation options that name it (its best dev
  # epoch), one per line for mapfile
  local dir; dir=$(teacher_dir "$1")
  printf '%s\n' --teacher-exp-dir "$dir" --teacher-epoch "$(summary_field "$dir" best_epoch)" \
    --teacher-avg 1 --teacher-targets online
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  begin_stage 0 "data"
  run_logged ./prepare.sh --profile "$profile" --nj 2
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  begin_stage 1 "teachers until converged"
  in_lane teacher until_converged study/teacher "$max_epochs" "$min_epochs" "$full_decode" \
    ./transducer_teacher/train.py --exp-dir study/teacher "${common_train[@]}" "${from_scratch_train[@]}"
  in_lane teacher-strong until_converged study/teacher-strong "$max_epochs" "$min_epochs" "$full_decode" \
    ./transducer_teacher/train.py --exp-dir study/teacher-strong "${strong_train[@]}" "${from_scratch_train[@]}"
  # The baselines do not need the teachers: stage 2 trains beside them (the stronger teacher
  # takes several times the small one's time, which would leave a core idle for hours).
  [ $stop_stage -ge 2 ] || wait_lanes
fi

baseline_lane() {  # until|to, seed [, epochs]: until converged, or to a fixed budget
  local command=(./transducer_streaming/train.py --exp-dir "study/baseline-seed$2"
    "${common_train[@]}" "${from_scratch_train[@]}" --seed "$2")
  if [ "$1" = until ]; then
    until_converged "study/baseline-seed$2" "$max_epochs" "$min_epochs" "$streaming_decode" "${command[@]}"
  else
    trained_to "study/baseline-seed$2" "$3" "$streaming_decode" "${command[@]}"
  fi
}
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  begin_stage 2 "streaming baselines until converged, then to the same epochs"
  for s in $(seq 1 "$seeds"); do in_lane "baseline-$s" baseline_lane until "$s"; done
  for s in $(seq 1 "$seeds"); do wait_lanes "baseline-$s"; done
  baseline_epochs=0
  for s in $(seq 1 "$seeds"); do
    e=$(summary_field "study/baseline-seed$s" epochs)
    [ "$e" -gt "$baseline_epochs" ] && baseline_epochs=$e
  done
  echo "$baseline_epochs" > study/baseline-epochs
  for s in $(seq 1 "$seeds"); do in_lane "baseline-$s" baseline_lane to "$s" "$baseline_epochs"; done
fi
# The baselines and run.sh's teacher; the stronger one may train on beside stage 3.
for s in $(seq 1 "$seeds"); do wait_lanes "baseline-$s"; done
wait_lanes teacher
baseline_epochs=$(cat study/baseline-epochs 2>/dev/null || echo 0)
# Every training that starts from another (both distillation stages, the control, stage 3's
# candidates) continues that training: its optimizer state, schedule position, running
# average and data order carry on (--init-state training), so a student differs from the
# control only by its loss. A fresh start there does not work: from seed 1's baseline
# (dev-clean 21.05 with its running average; 29.85 with its raw weights), fine-tuning with
# a fresh AdamW at 0.0005 and a new average drifted to 21.6, 22.2, 22.5 in three epochs at
# every hidden-KD weight tried (0.1, 0.3, 1.0).
continued=("${common_train[@]}" "${from_scratch_train[@]}" --init-state training)

best_run() {  # exp-dirs...: the one whose budget.json has the lowest dev WER (the first
  # listed on a tie)
  python3 -c 'import json, sys
runs = [(min(json.load(open(f"{d}/budget.json"))["wers"].values()), i, d)
        for i, d in enumerate(sys.argv[1:])]
print(min(runs)[2])' "$@"
}
select_stage1_lane() {  # hidden-KD weight
  local exp=study/select/ft1-hidden$1
  trained_to "$exp" "$select_epochs" "$streaming_decode" ./kd_stage1_hidden/train.py \
    --exp-dir "$exp" "${continued[@]}" "${selection_teacher[@]}" --seed 1 \
    --init-from study/baseline-seed1 --init-epoch "$baseline_epochs" --init-avg 1 \
    --hidden-kd-scale "$1"
}
select_stage2_lane() {  # stage-1 folder, its epoch, output-KD weight, entropy floor
  local exp=study/select/ft2-output$3-floor$4
  trained_to "$exp" "$select_epochs" "$streaming_decode" ./kd_stage2_output/train.py \
    --exp-dir "$exp" "${continued[@]}" "${selection_teacher[@]}" --seed 1 --init-from "$1" \
    --init-epoch "$2" --init-avg 1 --output-kd-scale "$3" --kd-entropy-floor "$4"
}
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  begin_stage 3 "distillation settings chosen on dev-clean (seed 1, run.sh's teacher)"
  [ "$baseline_epochs" -gt 0 ] || { echo "study.sh: run stage 2 first" >&2; exit 1; }
  mapfile -t selection_teacher < <(teacher_args teacher)
  # Stage 1's weight; then stage 2's weight at the method's entropy floor, from the best
  # stage-1 run's best epoch; then the floor at the best weight.
  # (Named waits: the stronger teacher may still train in a lane of its own.)
  runs=()
  for h in $hidden_kd_scales; do
    in_lane "select-hidden$h" select_stage1_lane "$h"; runs+=("study/select/ft1-hidden$h")
  done
  for h in $hidden_kd_scales; do wait_lanes "select-hidden$h"; done
  best1=$(best_run "${runs[@]}")
  e1=$(summary_field "$best1" best_epoch budget.json)
  runs=()
  for o in $output_kd_scales; do
    in_lane "select-output$o" select_stage2_lane "$best1" "$e1" "$o" "$method_floor"
    runs+=("study/select/ft2-output$o-floor$method_floor")
  done
  for o in $output_kd_scales; do wait_lanes "select-output$o"; done
  best2=$(best_run "${runs[@]}")
  output=${best2#study/select/ft2-output}; output=${output%-floor*}
  runs=("$best2")
  for f in $entropy_floors; do
    [ "$f" = "$method_floor" ] && continue
    in_lane "select-floor$f" select_stage2_lane "$best1" "$e1" "$output" "$f"
    runs+=("study/select/ft2-output$output-floor$f")
  done
  for f in $entropy_floors; do wait_lanes "select-floor$f"; done
  best3=$(best_run "${runs[@]}")
  printf 'hidden_kd_scale\t%s\noutput_kd_scale\t%s\nkd_entropy_floor\t%s\n' \
    "${best1#study/select/ft1-hidden}" "$output" "${best3##*-floor}" > study/selected-kd.tsv
  log "chosen on dev-clean: $(tr '\t\n' '= ' < study/selected-kd.tsv)"
fi
wait_lanes  # the stronger teacher, if stage 1 still trains it
if [ $stage -le 5 ] && [ $stop_stage -ge 4 ]; then  # the stages that train the method
  [ -f study/selected-kd.tsv ] || { echo "study.sh: run stage 3 first (it chooses the distillation settings: study/selected-kd.tsv)" >&2; exit 1; }
  selected() { awk -F '\t' -v key="$1" '$1 == key { print $2 }' study/selected-kd.tsv; }
  stage1_kd=(--hidden-kd-scale "$(selected hidden_kd_scale)")
  stage2_kd=(--output-kd-scale "$(selected output_kd_scale)"
    --kd-entropy-floor "$(selected kd_entropy_floor)")
fi

fine_tune_lane() {  # teacher name, seed
  local t=$1 s=$2 e1 teacher
  mapfile -t teacher < <(teacher_args "$t")
  until_converged "study/ft1-$t-seed$s" "$kd_max_epochs" 1 "$streaming_decode" \
    ./kd_stage1_hidden/train.py --exp-dir "study/ft1-$t-seed$s" "${continued[@]}" \
    "${teacher[@]}" --seed "$s" --init-from "study/baseline-seed$s" \
    --init-epoch "$baseline_epochs" --init-avg 1 "${stage1_kd[@]}"
  e1=$(summary_field "study/ft1-$t-seed$s" best_epoch)
  until_converged "study/ft2-$t-seed$s" "$kd_max_epochs" 1 "$streaming_decode" \
    ./kd_stage2_output/train.py --exp-dir "study/ft2-$t-seed$s" "${continued[@]}" \
    "${teacher[@]}" --seed "$s" --init-from "study/ft1-$t-seed$s" --init-epoch "$e1" \
    --init-avg 1 "${stage2_kd[@]}"
}
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  begin_stage 4 "fine-tuning design: the method from the converged baselines, and the control"
  [ "$baseline_epochs" -gt 0 ] || { echo "study.sh: run stage 2 first" >&2; exit 1; }
  for t in teacher strong; do
    for s in $(seq 1 "$seeds"); do in_lane "ft-$t-$s" fine_tune_lane "$t" "$s"; done
  done
  wait_lanes
  # The control: as many epochs after the baseline as the longest method took (stage 1's
  # best epoch plus stage 2's); each method is compared with the control's epoch that
  # matches its own updates.
  control_epochs=1
  for t in teacher strong; do
    for s in $(seq 1 "$seeds"); do
      e=$(( $(summary_field "study/ft1-$t-seed$s" best_epoch) + $(summary_field "study/ft2-$t-seed$s" best_epoch) ))
      [ "$e" -gt "$control_epochs" ] && control_epochs=$e
    done
  done
  for s in $(seq 1 "$seeds"); do
    in_lane "control-$s" trained_to "study/control-seed$s" "$control_epochs" "$streaming_decode" \
      ./transducer_streaming/train.py --exp-dir "study/control-seed$s" "${continued[@]}" \
      --seed "$s" --init-from "study/baseline-seed$s" --init-epoch "$baseline_epochs" --init-avg 1
  done
  wait_lanes
fi

from_scratch_lane() {  # seed
  local s=$1 f1 teacher
  mapfile -t teacher < <(teacher_args teacher)
  until_converged "study/scratch1-seed$s" $(( baseline_epochs - 1 )) \
    $(( min_epochs < baseline_epochs - 1 ? min_epochs : baseline_epochs - 1 )) "$streaming_decode" \
    ./kd_stage1_hidden/train.py --exp-dir "study/scratch1-seed$s" "${common_train[@]}" \
    "${from_scratch_train[@]}" "${teacher[@]}" --seed "$s" --init-from scratch "${stage1_kd[@]}"
  f1=$(summary_field "study/scratch1-seed$s" best_epoch)
  trained_to "study/scratch2-seed$s" $(( baseline_epochs - f1 )) "$streaming_decode" \
    ./kd_stage2_output/train.py --exp-dir "study/scratch2-seed$s" "${continued[@]}" \
    "${teacher[@]}" --seed "$s" --init-from "study/scratch1-seed$s" --init-epoch "$f1" \
    --init-avg 1 "${stage2_kd[@]}"
}
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  begin_stage 5 "from-scratch design: stage 1 then stage 2 for the baseline's updates"
  [ "$baseline_epochs" -ge 2 ] || { echo "study.sh: run stage 2 first" >&2; exit 1; }
  for s in $(seq 1 "$seeds"); do in_lane "scratch-$s" from_scratch_lane "$s"; done
  wait_lanes
fi

final_epoch() {  # exp-dir: the checkpoint the table decodes (best dev epoch; the budget's
  # last epoch for a fixed-budget training)
  if [ -f "$1/convergence.json" ] && [ ! -f "$1/budget.json" ]; then
    summary_field "$1" best_epoch
  else
    summary_field "$1" epochs budget.json
  fi
}
test_decode() {  # decode script options..., exp-dir, epoch, method: queued (local/lanes.sh)
  local script=$1; shift
  # shellcheck disable=SC2086
  queue_job $script --exp-dir "$1" --epoch "$2" --avg 1 --use-averaged-model true \
    --test-sets "test-clean test-other" --decoding-method $3 --skip-existing true
}
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  begin_stage 6 "decode the test sets with the final models"
  for t in teacher strong; do
    dir=$(teacher_dir "$t")
    for method in greedy_search "modified_beam_search --beam-size 4"; do
      test_decode "$full_decode" "$dir" "$(summary_field "$dir" best_epoch)" "$method"
    done
  done
  for s in $(seq 1 "$seeds"); do
    methods=(greedy_search); [ "$s" = 1 ] && methods+=("modified_beam_search --beam-size 4")
    for method in "${methods[@]}"; do
      test_decode "$streaming_decode" "study/baseline-seed$s" "$baseline_epochs" "$method"
      for t in teacher strong; do
        exp=study/ft2-$t-seed$s
        [ -f "$exp/convergence.json" ] || continue
        test_decode "$streaming_decode" "$exp" "$(final_epoch "$exp")" "$method"
        # The control at the method's own updates after the baseline.
        e=$(( $(summary_field "study/ft1-$t-seed$s" best_epoch) + $(final_epoch "$exp") ))
        test_decode "$streaming_decode" "study/control-seed$s" "$e" "$method"
      done
      exp=study/scratch2-seed$s
      [ -f "$exp/budget.json" ] && test_decode "$streaming_decode" "$exp" "$(final_epoch "$exp")" "$method"
    done
  done
  run_queued_jobs  # two at a time
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  begin_stage 7 "RESULTS.md"
  write_run_time writing-results  # what RESULTS.md says of the run that writes it
  # With run.sh's outputs here, RESULTS.md is written anew from both; without them (the
  # study run alone), only its study section is replaced and run.sh's figures stay.
  only=(); [ -d exp-commands ] || only=(--study-only)
  ./local/write_results.py --commands-dir exp-commands --lang-dir "$lang_dir" \
    --decode-chunk "$decode_chunk" --decode-left-context "$decode_left_context" --output RESULTS.md \
    "${only[@]}"
  sed -n '/^## The distillation study/,/^## /p' RESULTS.md
fi
