#!/usr/bin/env bash
# Data preparation for the LibriSpeech recipe, or for the embedded synthetic corpus that
# stands in for it where LibriSpeech cannot be downloaded.
#
# Usage:
#   ./prepare.sh                                   # embedded corpus, default profile
#   ./prepare.sh --profile tiny                    # a few minutes of audio (tests, smoke runs)
#   ./prepare.sh --corpus librispeech --dl-dir /data   # /data/LibriSpeech/<part>/...
#   ./prepare.sh --stage 2 --stop-stage 3          # run only some stages
#
# Options (defaults in brackets):
#   --corpus tts|librispeech   [tts when no LibriSpeech is found under --dl-dir]
#   --profile tiny|default     [default] size of the embedded corpus
#   --dl-dir DIR               [download/tts-<profile> or download] where LibriSpeech/ lives
#   --parts "P1 P2 ..."        [train-clean-100 dev-clean test-clean test-other]
#   --vocab-sizes "V1 V2"      [tts: "500 100" (run.sh trains with 100), 200 for the tiny profile;
#                              librispeech: 500]
#   --perturb-speed true|false [false for tts, true for librispeech] 0.9/1.1 copies of train
#   --on-bad-input skip|stop   [skip] what the manifest stage does with bad utterances
#   --nj N                     [2] parallel jobs
#   --seed N                   [42] seed of the embedded corpus
#   --stage N / --stop-stage N [0 / 4]
#
# Stages:
#   0  corpus: synthesise (tts), or find/download LibriSpeech (librispeech)
#   1  lhotse manifests     -> data/manifests/librispeech_{recordings,supervisions}_<part>.jsonl.gz
#   2  80-dim fbank, lilcom -> data/fbank/librispeech_cuts_<part>.jsonl.gz
#   3  sentencepiece BPE    -> data/lang_bpe_<V>/{bpe.model,tokens.txt,...}
#   4  validate the cut manifests
# Each stage writes data/.<stage>.done; delete it (or data/) to redo that stage.
set -eou pipefail

corpus=""
profile=default
dl_dir=""
parts="train-clean-100 dev-clean test-clean test-other"
vocab_sizes=()
perturb_speed=""
on_bad_input=skip
nj=2
seed=42
stage=0
stop_stage=4

cd "$(dirname "$0")"
. local/parse_options.sh
. local/setup_env.sh


# Wall time of each stage goes to data/timings.tsv (read by tools/corpus_report.py).
stage_started=0
begin_stage() { stage_started=$(date +%s); log "Stage $1: $2"; }
end_stage() { printf '%s\t%d\n' "$1" $(( $(date +%s) - stage_started )) >> data/timings.tsv; }

if [ -z "$corpus" ]; then
  if [ -n "$dl_dir" ] && [ -d "$dl_dir/LibriSpeech/dev-clean" ] && [ ! -f "$dl_dir/tts-corpus-$profile.json" ]; then
    corpus=librispeech
  else
    corpus=tts
  fi
fi
case "$corpus" in
  tts) dl_dir=${dl_dir:-$PWD/download/tts-$profile}
       perturb_speed=${perturb_speed:-false}
       [ ${#vocab_sizes[@]} -gt 0 ] || { [ "$profile" = tiny ] && vocab_sizes=(200) || vocab_sizes=(500 100); } ;;
  librispeech) dl_dir=${dl_dir:-$PWD/download}
       perturb_speed=${perturb_speed:-true}
       [ ${#vocab_sizes[@]} -gt 0 ] || vocab_sizes=(500) ;;
  *) echo "--corpus must be tts or librispeech, not '$corpus'" >&2; exit 1 ;;
esac
# Every option is checked before any stage runs, so a typo does not surface after an hour.
bad_option() { echo "prepare.sh: $1 (see ./prepare.sh --help)" >&2; exit 1; }
case "$profile" in tiny|default) ;; *) bad_option "--profile must be tiny or default, not '$profile'" ;; esac
case "$perturb_speed" in true|false) ;; *) bad_option "--perturb-speed must be true or false, not '$perturb_speed'" ;; esac
case "$on_bad_input" in skip|stop) ;; *) bad_option "--on-bad-input must be skip or stop, not '$on_bad_input'" ;; esac
for n in "$nj" "$seed" "$stage" "$stop_stage" "${vocab_sizes[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] || bad_option "'$n' is not a whole number (--nj, --seed, --stage, --stop-stage, --vocab-sizes)"
done
train_parts=$(echo "$parts" | tr ' ' '\n' | grep '^train' | tr '\n' ' ' || true)
[ -n "$train_parts" ] || { echo "--parts must include a train-* part" >&2; exit 1; }

# data/ belongs to one corpus configuration; refuse to mix two.
config="corpus=$corpus profile=$profile seed=$seed dl_dir=$dl_dir"
if [ "$corpus" = tts ]; then
  config="$config version=$(python -c 'from icefall_kd.corpus.profiles import CORPUS_VERSION as v; print(v)')"
fi
mkdir -p data
if [ -f data/.config ] && [ "$(cat data/.config)" != "$config" ]; then
  echo "data/ was prepared for: $(cat data/.config)" >&2
  echo "this run asks for:      $config" >&2
  echo "Remove data/ (rm -rf data) to prepare the new configuration." >&2
  exit 1
fi
echo "$config" > data/.config
log "corpus=$corpus profile=$profile dl_dir=$dl_dir parts=($parts) vocab_sizes=(${vocab_sizes[*]})"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.corpus.done ]; then
  if [ "$corpus" = tts ]; then
    begin_stage 0 "synthesise the embedded corpus ($profile) into $dl_dir"
    ./local/synthesize_corpus.py --profile "$profile" --seed "$seed" --output-dir "$dl_dir" --num-jobs "$nj"
  else
    begin_stage 0 "LibriSpeech in $dl_dir"
    if [ ! -d "$dl_dir/LibriSpeech" ]; then
      log "$dl_dir/LibriSpeech not found; trying to download it with lhotse"
      lhotse download librispeech --full "$dl_dir" || {
        echo "Could not download LibriSpeech. Put it at $dl_dir/LibriSpeech (or pass --dl-dir)," >&2
        echo "or use the embedded corpus: ./prepare.sh --corpus tts" >&2; exit 1; }
    fi
  fi
  end_stage corpus
  touch data/.corpus.done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [ ! -f data/.manifests.done ]; then
  begin_stage 1 "lhotse manifests"
  ./local/prepare_manifests.py --corpus-dir "$dl_dir/LibriSpeech" --parts "$parts" \
    --output-dir data/manifests --on-bad-input "$on_bad_input"
  end_stage manifests
  touch data/.manifests.done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ ! -f data/.fbank.done ]; then
  begin_stage 2 "fbank features"
  for part in $parts; do
    perturb=false
    case "$part" in train*) perturb=$perturb_speed ;; esac
    if [ ! -f "data/fbank/librispeech_cuts_$part.jsonl.gz" ]; then
      ./local/compute_fbank.py --manifest-dir data/manifests --output-dir data/fbank \
        --parts "$part" --perturb-speed "$perturb" --num-jobs "$nj"
    fi
  done
  end_stage fbank
  touch data/.fbank.done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for vocab_size in "${vocab_sizes[@]}"; do
    lang_dir=data/lang_bpe_$vocab_size
    if [ ! -f "$lang_dir/.done" ]; then
      begin_stage 3 "BPE model, vocabulary $vocab_size -> $lang_dir"
      sups=()
      for part in $train_parts; do sups+=("data/manifests/librispeech_supervisions_$part.jsonl.gz"); done
      ./local/train_bpe_model.py --supervisions "${sups[@]}" --lang-dir "$lang_dir" --vocab-size "$vocab_size"
      end_stage "bpe_$vocab_size"
      touch "$lang_dir/.done"
    fi
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ ! -f data/.validate.done ]; then
  begin_stage 4 "validate cut manifests"
  manifests=()
  for part in $parts; do manifests+=("data/fbank/librispeech_cuts_$part.jsonl.gz"); done
  ./local/validate_manifest.py "${manifests[@]}"
  end_stage validate
  touch data/.validate.done
fi

log "Data preparation done: data/manifests, data/fbank, data/lang_bpe_{${vocab_sizes[*]}}"
