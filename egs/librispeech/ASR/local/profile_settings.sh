# Sourced by run.sh and study.sh after their options are parsed: the settings each profile
# (tiny, default) gives to whatever the options left empty (model preset, epochs, batch size,
# training and distillation options, decoding chunk), and the BPE folder. One place for them,
# so the study trains exactly the recipe's models.
# shellcheck disable=SC2034  # the variables are read by the scripts that source this file
if [ "$profile" = tiny ]; then
  vocab=200; model_preset=${model_preset:-tiny}; num_epochs=${num_epochs:-2}; avg=${avg:-1}
  zipformer_preset=${zipformer_preset:-zipformer-tiny}; zipformer_epochs=${zipformer_epochs:-2}
  max_duration=${max_duration:-40}; teacher_targets=${teacher_targets:-exported}
  extra_train=(--num-buckets 2 --drop-last false --warm-step 20 --warmup-batches 10 --save-every-n 20)
  extra_kd=(--num-buckets 2 --drop-last false --warmup-batches 5 --save-every-n 20
    --spec-aug-time-warp-factor 0)
  decode_chunk=4; decode_left_context=16; sweep_chunks="2 4 8"
else
  # Measured on the embedded corpus: with 500 BPE pieces, AdamW 3e-3 and SpecAugment the
  # models stayed in the "mostly blank" phase for 1,500 updates; the 'small' preset with 100
  # pieces, lr 1e-3, CTC 0.5 and no SpecAugment/dropout left it after about 700 updates.
  vocab=100; model_preset=${model_preset:-small}; num_epochs=${num_epochs:-6}; avg=${avg:-2}
  zipformer_preset=${zipformer_preset:-zipformer-small}; zipformer_epochs=${zipformer_epochs:-3}
  max_duration=${max_duration:-100}; teacher_targets=${teacher_targets:-online}
  extra_train=(--base-lr 0.001 --lr-batches 5000 --warm-step 300 --warmup-batches 100
    --save-every-n 200 --ctc-loss-scale 0.5 --enable-spec-aug false --dropout 0.0)
  # Distillation stages fine-tune: a lower peak rate, no loss warm-up.
  extra_kd=(--base-lr 0.0005 --lr-batches 5000 --warmup-batches 50 --save-every-n 200
    --ctc-loss-scale 0.5 --enable-spec-aug false --dropout 0.0)
  sweep_chunks="4 8 16"
fi
if [ -n "$vocab_size" ]; then vocab=$vocab_size
elif [ "$corpus" = librispeech ]; then vocab=500  # what prepare.sh builds for LibriSpeech
fi
lang_dir=data/lang_bpe_$vocab
train_options() {  # preset: the options every training of that model shares, one per line
  # (for mapfile); side-by-side trainings load batches in their own process (workers 0)
  local options=(--model-preset "$1" --lang-dir "$lang_dir" --max-duration "$max_duration"
    --num-workers "$([ "$parallel_training" = true ] && echo 0 || echo 1)"
    --average-period 10 --log-interval 20)
  [ -n "$train_parts" ] && options+=(--train-parts "$train_parts")
  printf '%s\n' "${options[@]}"
}
optimizer_options() {  # option name, optimizer (adamw|scaled-adam), peak rate or "": the
  # training options that choose it, one per line (for mapfile). They come after the
  # profile's (--base-lr 0.001, AdamW's rate) and the last --base-lr wins; ScaledAdam's rate
  # defaults to the trainer's (icefall_kd/training/trainer.py DEFAULT_BASE_LR).
  local lr=$3
  case "$2" in
    adamw|scaled-adam) ;;
    *) echo "$1 takes adamw or scaled-adam, got '$2'" >&2; return 1 ;;
  esac
  if [ -z "$lr" ] && [ "$2" = scaled-adam ]; then
    lr=$(python -c 'from icefall_kd.training.trainer import DEFAULT_BASE_LR as r; print(r["scaled-adam"])') || return 1
  fi
  printf '%s\n' --optimizer "$2"
  [ -z "$lr" ] || printf '%s\n' --base-lr "$lr"
}
