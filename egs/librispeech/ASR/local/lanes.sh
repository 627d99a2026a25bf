# Sourced by run.sh and study.sh: "lanes" of training side by side, one CPU thread each (two
# in stages 1 and 6-7, one per ablation group and extra seed in stage 8; one after the other
# with --parallel-training false), and a queue of decodes and exports run two at a time the
# same way. Uses the caller's $parallel_training, $num_gpus, $commands, record and log.
#
#   in_lane NAME COMMAND...   start COMMAND in the background as lane NAME
#   wait_lanes [NAME]         wait for lane NAME, or for every lane; exit 1 if one failed
#   train LOG COMMAND...      run COMMAND in the current lane, output to LOG, the command
#                             line recorded in $commands (RESULTS.md lists them)
#   queue_job CMD... [';' CMD...]  queue a job: its commands one after the other, stopping at
#                             the first that fails; recorded in $commands now, in queue order
#   run_queued_jobs           run the queue, two jobs at a time (each line of output marked
#                             with its job's number); exit 1 if one failed
#
# A lane's commands are recorded in a file of its own and added to $commands when the lane
# is waited for, so that their order in RESULTS.md does not depend on which lane ran first.
lane_pids=(); lane_names=(); lane_records=(); lane_targets=()
stop_lanes() {
  [ ${#lane_pids[@]} -eq 0 ] || kill "${lane_pids[@]}" 2>/dev/null || true
  rm -f "${lane_records[@]+"${lane_records[@]}"}"
}
# A failed stage does not leave trainings running, nor a wall time that looks complete.
trap 'status=$?; stop_lanes; [ $status = 0 ] && end_stage; exit $status' EXIT
# A script stopped by a signal has not ended well: without these, the exit trap would see
# status 0 and record the stage as complete.
trap 'exit 143' TERM
trap 'exit 130' INT
in_lane() {  # name, command...: start a lane in the background
  local name=$1; shift
  if [ "$parallel_training" = true ]; then
    local lane_commands
    lane_commands=$(mktemp)
    ( export OMP_NUM_THREADS=1; commands=$lane_commands; "$@" ) &
    lane_pids+=($!); lane_names+=("$name"); lane_records+=("$lane_commands")
    lane_targets+=("$commands")
  else
    "$@"
  fi
}
wait_lanes() {  # [name]: wait for that lane, or for all of them
  local status=0 i pids=() names=() records=() targets=()
  for i in "${!lane_pids[@]}"; do
    if [ -z "${1:-}" ] || [ "${lane_names[$i]}" = "$1" ]; then
      wait "${lane_pids[$i]}" || { echo "lane '${lane_names[$i]}' failed (see its output above)" >&2; status=1; }
      cat "${lane_records[$i]}" >> "${lane_targets[$i]}"; rm -f "${lane_records[$i]}"
    else
      pids+=("${lane_pids[$i]}"); names+=("${lane_names[$i]}")
      records+=("${lane_records[$i]}"); targets+=("${lane_targets[$i]}")
    fi
  done
  lane_pids=("${pids[@]+"${pids[@]}"}"); lane_names=("${names[@]+"${names[@]}"}")
  lane_records=("${records[@]+"${records[@]}"}"); lane_targets=("${targets[@]+"${targets[@]}"}")
  [ $status = 0 ] || exit 1
}
threads_prefix() {  # what a recorded command line starts with: the thread count of a lane
  [ "$parallel_training" = true ] && printf 'OMP_NUM_THREADS=1 '
  return 0
}
train() {  # log file, command...
  local log_file=$1; shift
  # Several GPUs: one torchrun process per GPU (run.sh's --num-gpus).
  [ "$num_gpus" -gt 1 ] && set -- torchrun --standalone --nproc-per-node "$num_gpus" "$@"
  mkdir -p "$(dirname "$log_file")"
  local line
  line="$(threads_prefix)$(printf '%q ' "$@")>> $log_file 2>&1"
  echo "$line" >> "$commands"
  log "$line"
  "$@" >> "$log_file" 2>&1 || { echo "failed: see $log_file" >&2; return 1; }
}
queued_jobs=()
queue_job() {  # command... [';' command...]
  local chain="" command=()
  while [ $# -gt 0 ]; do
    command=()
    while [ $# -gt 0 ] && [ "$1" != ";" ]; do command+=("$1"); shift; done
    [ $# -gt 0 ] && shift  # the ';'
    [ ${#command[@]} -gt 0 ] || continue
    printf '%s' "$(threads_prefix)" >> "$commands"; record "${command[@]}"
    chain+="${chain:+ && }$(printf '%q ' "${command[@]}")"
  done
  [ -z "$chain" ] || queued_jobs+=("$chain")
}
# One job: its output marked "[job N]" line by line as it comes; exit 255 on failure, which
# makes xargs start no further job.
queued_job_runner='n=$1; set -o pipefail
{ eval "$2"; } 2>&1 | sed -u "s/^/[job $n] /" && exit 0
echo "job $n failed: $2 (its output is marked [job $n] above)" >&2; exit 255'
run_queued_jobs() {
  [ ${#queued_jobs[@]} -gt 0 ] || return 0
  local i status=0 at_once=(-P 1)
  [ "$parallel_training" = true ] && at_once=(-P 2 env OMP_NUM_THREADS=1)
  for i in "${!queued_jobs[@]}"; do log "job $((i + 1)): ${queued_jobs[$i]}"; done
  for i in "${!queued_jobs[@]}"; do printf '%s\0%s\0' "$((i + 1))" "${queued_jobs[$i]}"; done |
    xargs -0 -n 2 "${at_once[@]}" bash -c "$queued_job_runner" queued-job || status=1
  queued_jobs=()
  [ $status = 0 ] || { echo "a queued job failed (see above)" >&2; exit 1; }
}
