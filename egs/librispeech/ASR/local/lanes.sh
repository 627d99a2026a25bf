# Sourced by run.sh: "lanes" of training side by side, one CPU thread each (two in stages 1
# and 6-7, one per ablation group and extra seed in stage 8; one after the other with
# --parallel-training false). Uses run.sh's $parallel_training, $num_gpus, $commands and log.
#
#   in_lane NAME COMMAND...   start COMMAND in the background as lane NAME
#   wait_lanes [NAME]         wait for lane NAME, or for every lane; exit 1 if one failed
#   train LOG COMMAND...      run COMMAND in the current lane, output to LOG, the command
#                             line recorded in $commands (RESULTS.md lists them)
lane_pids=(); lane_names=()
stop_lanes() { [ ${#lane_pids[@]} -eq 0 ] || kill "${lane_pids[@]}" 2>/dev/null || true; }
# A failed stage does not leave trainings running, nor a wall time that looks complete.
trap 'status=$?; stop_lanes; [ $status = 0 ] && end_stage; exit $status' EXIT
in_lane() {  # name, command...: start a lane in the background
  local name=$1; shift
  if [ "$parallel_training" = true ]; then
    ( export OMP_NUM_THREADS=1; "$@" ) &
    lane_pids+=($!); lane_names+=("$name")
  else
    "$@"
  fi
}
wait_lanes() {  # [name]: wait for that lane, or for all of them
  local status=0 i pids=() names=()
  for i in "${!lane_pids[@]}"; do
    if [ -z "${1:-}" ] || [ "${lane_names[$i]}" = "$1" ]; then
      wait "${lane_pids[$i]}" || { echo "lane '${lane_names[$i]}' failed (see the train.log above)" >&2; status=1; }
    else
      pids+=("${lane_pids[$i]}"); names+=("${lane_names[$i]}")
    fi
  done
  lane_pids=("${pids[@]+"${pids[@]}"}"); lane_names=("${names[@]+"${names[@]}"}")
  [ $status = 0 ] || exit 1
}
train() {  # log file, command...
  local log_file=$1; shift
  # Several GPUs: one torchrun process per GPU (run.sh's --num-gpus).
  [ "$num_gpus" -gt 1 ] && set -- torchrun --standalone --nproc-per-node "$num_gpus" "$@"
  mkdir -p "$(dirname "$log_file")"
  local line
  line="$([ "$parallel_training" = true ] && printf 'OMP_NUM_THREADS=1 ')$(printf '%q ' "$@")>> $log_file 2>&1"
  echo "$line" >> "$commands"
  log "$line"
  "$@" >> "$log_file" 2>&1 || { echo "failed: see $log_file" >&2; return 1; }
}

