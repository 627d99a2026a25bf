#!/usr/bin/env bash
# Sourced by prepare.sh / run.sh after they set their defaults: turns `--some-name value` into
# some_name=value for every variable that already exists, and `--help` into the caller's
# usage text (the comment block at the top of the calling script).
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
      exit 0 ;;
    --*=*)
      name=${1%%=*}; value=${1#*=} ;;
    --*)
      name=$1
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      value=$2; shift ;;
    *)
      echo "$0: unexpected argument '$1' (options look like --name value; see --help)" >&2
      exit 1 ;;
  esac
  var=${name#--}; var=${var//-/_}
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $name (see --help)" >&2; exit 1
  fi
  # Array defaults (e.g. vocab_sizes) take a space-separated list.
  if [[ "$(declare -p "$var")" == "declare -a"* ]]; then
    read -r -a "$var" <<< "$value"
  else
    printf -v "$var" '%s' "$value"
  fi
  shift
done
