#!/usr/bin/env bash
# Does ScaledAdam (icefall_kd/training/scaled_adam.py) train the Zipformer (or, with
# --encoder conformer, the Conformer) better than AdamW on this corpus? The teacher (run.sh's
# --zipformer-preset or --model-preset and training options) trained for run.sh's
# --zipformer-epochs (--num-epochs) with AdamW at the profile's peak rate and with
# ScaledAdam at each of --lrs, the same seed, data and schedule otherwise; every epoch
# decoded on dev-clean (greedy, the epoch's averaged model), never on the test sets.
# RESULTS-optimizer.md (RESULTS-optimizer-conformer.md) compares the last epochs (paired
# bootstrap over dev-clean utterances) and plots the curves (optimizer-curves.png,
# optimizer-conformer-curves.png). run.sh's --zipformer-optimizer and --zipformer-base-lr
# defaults come from it.
#
# Usage:
#   ./optimizer_study.sh                   # after ./prepare.sh
#   ./optimizer_study.sh --profile tiny    # on the tiny corpus (a smoke test)
#   ./optimizer_study.sh --encoder conformer --lrs 0.045   # the Conformer teacher
#
# Options (defaults in brackets):
#   --profile tiny|default     [default] corpus and model/training settings (run.sh's)
#   --encoder zipformer|conformer [zipformer] which of run.sh's teachers
#   --lrs "A B"                ["0.045 0.015"] ScaledAdam peak rates (0.045: icefall's)
#   --parallel-training B      [true] the arms side by side, one CPU thread each
#   --stage N / --stop-stage N [1 / 2]
#
# Stages:
#   1  train and decode the arms (optimizer/adamw, optimizer/scaled-adam-lrX; for the
#      Conformer optimizer/conformer-adamw, ...), each arm's output in optimizer/ARM.log
#   2  RESULTS-optimizer.md or RESULTS-optimizer-conformer.md (local/write_optimizer_results.py)
set -eou pipefail

profile=default
encoder=zipformer
lrs="0.045 0.015"
parallel_training=true
stage=1
stop_stage=2
# Read by local/profile_settings.sh (run.sh's options this study does not change).
corpus=""; model_preset=""; vocab_size=""; train_parts=""; num_epochs=""; avg=""
max_duration=""; teacher_targets=""; zipformer_preset=""; zipformer_epochs=""; num_gpus=0

cd "$(dirname "$0")"
. local/parse_options.sh
. local/setup_env.sh
. local/profile_settings.sh
for lr in $lrs; do
  [[ "$lr" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "optimizer_study.sh: --lrs: '$lr' is not a positive number" >&2; exit 1; }
done
[ -n "$lrs" ] || { echo "optimizer_study.sh: --lrs is empty; give at least one rate" >&2; exit 1; }
case "$encoder" in
  # The Zipformer's folders and report keep the names they had before --encoder existed.
  zipformer) preset=$zipformer_preset; epochs=$zipformer_epochs; arm_prefix=""; report=RESULTS-optimizer.md; model=Zipformer ;;
  conformer) preset=$model_preset; epochs=$num_epochs; arm_prefix=conformer-; report=RESULTS-optimizer-conformer.md; model=Conformer ;;
  *) echo "optimizer_study.sh: --encoder takes zipformer or conformer, got '$encoder'" >&2; exit 1 ;;
esac

mkdir -p optimizer
commands=optimizer/${arm_prefix}commands.txt
begin_stage() { log "Stage $1: $2"; }
record() { printf '%q ' "$@" | sed 's/ $//' >> "$commands"; echo >> "$commands"; }
end_stage() { :; }  # lanes.sh's exit trap calls it
. local/lanes.sh

mapfile -t preset_train < <(train_options "$preset")
[ ${#preset_train[@]} -gt 0 ] || exit 1
dev_decode="./transducer_teacher/decode.py --lang-dir $lang_dir --max-duration 300 --num-workers 1 --on-the-fly-feats true"
adamw_dir=optimizer/${arm_prefix}adamw
arm_lane() {  # name, exp-dir, training options...: every epoch trained, then decoded on
  # dev-clean; the output goes to optimizer/NAME.log
  local name=$1 exp=$2; shift 2
  mkdir -p "$exp"
  train "optimizer/$name.log" ./local/train_until_converged.py --exp-dir "$exp" \
    --max-epochs "$epochs" --min-epochs "$epochs" --summary budget.json \
    --decode "$dev_decode" -- ./transducer_teacher/train.py --exp-dir "$exp" \
    "${preset_train[@]}" "${extra_train[@]}" "$@"
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  begin_stage 1 "train and decode the arms"
  : > "$commands"
  in_lane adamw arm_lane "${arm_prefix}adamw" "$adamw_dir" --optimizer adamw
  for lr in $lrs; do
    in_lane "scaled-adam-$lr" arm_lane "${arm_prefix}scaled-adam-lr$lr" \
      "optimizer/${arm_prefix}scaled-adam-lr$lr" --optimizer scaled-adam --base-lr "$lr"
  done
  wait_lanes
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  begin_stage 2 "$report"
  adamw_lr=$(printf '%s\n' "${extra_train[@]}" | sed -n '/^--base-lr$/{n;p;}')
  arms=(--arm "AdamW, peak lr ${adamw_lr:-0.003}=$adamw_dir")
  for lr in $lrs; do arms+=(--arm "ScaledAdam, peak lr $lr=optimizer/${arm_prefix}scaled-adam-lr$lr"); done
  ./local/write_optimizer_results.py --epochs "$epochs" --commands "$commands" \
    "${arms[@]}" --output "$report" --title "$model teacher: AdamW or ScaledAdam" \
    --intro "The $model teacher ($preset, run.sh's training options, seed 1) trained for $epochs epochs with each optimiser: \`./optimizer_study.sh --profile $profile --encoder $encoder --lrs \"$lrs\"\`. Chosen and compared on dev-clean only; the test sets are not decoded here."
  cat "$report"
fi
