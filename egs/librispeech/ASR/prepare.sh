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
# Stages 1-4 record in their .done stamp (data/.manifests.done, data/.fbank.done,
# data/lang_bpe_<V>/.done, data/.validate.done) what each part or vocabulary read, and a rerun
# redoes exactly those whose inputs or options changed: fix or add an audio file and rerun, and
# its part's manifests, features, the BPE models (for a train part) and validation are redone.
# Delete a stamp (or data/) to redo its whole stage.
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

# Stages 1-4 record what each of their units (a part, a vocabulary) read in their .done stamp
# (local/stage_stamp.py) and redo exactly the units whose inputs or options changed since, so a
# fixed input file, or a manifest that changed upstream, is never left behind by a rerun.
stamp() { ./local/stage_stamp.py "$@"; }
audio_dir() { echo "$dl_dir/LibriSpeech/$1"; }
manifest() { echo "data/manifests/librispeech_$1_$2.jsonl.gz"; }
cuts() { echo "data/fbank/librispeech_cuts_$1.jsonl.gz"; }
perturb_for() { case "$1" in train*) echo "$perturb_speed" ;; *) echo false ;; esac; }

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  units=()
  for part in $parts; do units+=(--unit "$part" "on-bad-input=$on_bad_input" "$(audio_dir "$part")"); done
  stale=$(stamp stale data/.manifests.done "${units[@]}")
  if [ -n "$stale" ]; then
    begin_stage 1 "lhotse manifests: $stale"
    ./local/prepare_manifests.py --corpus-dir "$dl_dir/LibriSpeech" --parts "$stale" \
      --output-dir data/manifests --on-bad-input "$on_bad_input"
    stamp record data/.manifests.done "${units[@]}"
    end_stage manifests
  fi
fi

# The audio folder is an input of the fbank stage too: a file replaced by one of the same
# length leaves the manifests as they were, but not the features.
fbank_unit() {
  echo --unit "$1" "perturb-speed=$(perturb_for "$1")" "$(manifest recordings "$1")" \
    "$(manifest supervisions "$1")" "$(audio_dir "$1")"
}
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  units=()
  for part in $parts; do read -ra unit <<< "$(fbank_unit "$part")"; units+=("${unit[@]}"); done
  stale=$(stamp stale data/.fbank.done "${units[@]}")
  if [ -n "$stale" ]; then
    begin_stage 2 "fbank features: $stale"
    for part in $stale; do
      rm -rf "$(cuts "$part")" "data/fbank/feats_$part" "data/fbank/feats_$part.lca"
      ./local/compute_fbank.py --manifest-dir data/manifests --output-dir data/fbank \
        --parts "$part" --perturb-speed "$(perturb_for "$part")" --num-jobs "$nj"
      read -ra unit <<< "$(fbank_unit "$part")"
      stamp record data/.fbank.done "${unit[@]}"  # per part: an interrupted stage resumes
    done
    end_stage fbank
  fi
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  sups=()
  for part in $train_parts; do sups+=("$(manifest supervisions "$part")"); done
  for vocab_size in "${vocab_sizes[@]}"; do
    lang_dir=data/lang_bpe_$vocab_size
    unit=(--unit "bpe_$vocab_size" "vocab-size=$vocab_size" "${sups[@]}")
    stale=$(stamp stale "$lang_dir/.done" "${unit[@]}")
    [ -n "$stale" ] || continue
    begin_stage 3 "BPE model, vocabulary $vocab_size -> $lang_dir"
    ./local/train_bpe_model.py --supervisions "${sups[@]}" --lang-dir "$lang_dir" --vocab-size "$vocab_size"
    stamp record "$lang_dir/.done" "${unit[@]}"
    end_stage "bpe_$vocab_size"
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  inputs=()
  for part in $parts; do inputs+=("$(cuts "$part")" "$(manifest supervisions "$part")"); done
  unit=(--unit cuts "parts=${parts// /,}" "${inputs[@]}")
  stale=$(stamp stale data/.validate.done "${unit[@]}")
  if [ -n "$stale" ]; then
    begin_stage 4 "validate cut manifests, and each against its supervision manifest"
    manifests=()
    for part in $parts; do manifests+=("$(cuts "$part")"); done
    ./local/validate_manifest.py --supervisions-dir data/manifests "${manifests[@]}"
    stamp record data/.validate.done "${unit[@]}"
    end_stage validate
  fi
fi

log "Data preparation done: data/manifests, data/fbank, data/lang_bpe_{${vocab_sizes[*]}}"
