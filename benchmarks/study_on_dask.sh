#!/usr/bin/env bash
# Times a study on a local Dask scheduler with N single-thread workers (default 2: one per core of a 2-core
# machine), as the full preset's time target is stated. Every argument goes to `modlens study`; the scheduler
# and workers are stopped on exit. Start and finish times, and GNU time's wall, CPU and peak memory, go to LOG/time.txt.
#
#   benchmarks/study_on_dask.sh --preset full --out results/full5            # a fresh run
#   benchmarks/study_on_dask.sh --preset full --out results/full5 --resume   # continue a store
#
# Environment: WORKERS (2), PORT (8786), LOG (results/dask-logs), MODLENS_VENV (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MODLENS_VENV:-.venv}
WORKERS=${WORKERS:-2}
PORT=${PORT:-8786}
LOG=${LOG:-results/dask-logs}
mkdir -p "$LOG"

pids=()
cleanup() { if ((${#pids[@]})); then kill "${pids[@]}" 2>/dev/null || true; fi; }
trap cleanup EXIT

"$VENV/bin/dask" scheduler --port "$PORT" --no-dashboard >"$LOG/scheduler.log" 2>&1 &
pids+=($!)
for i in $(seq "$WORKERS"); do
  "$VENV/bin/dask" worker "tcp://127.0.0.1:$PORT" --nthreads 1 --nworkers 1 --no-dashboard >"$LOG/worker$i.log" 2>&1 &
  pids+=($!)
done
# the study waits for no worker: give them the time to register, so the first units spread over all of them
for _ in $(seq 60); do
  if (($(grep -l "Registered to" "$LOG"/worker*.log 2>/dev/null | wc -l) == WORKERS)); then break; fi
  sleep 1
done
echo "[study_on_dask] $WORKERS workers on tcp://127.0.0.1:$PORT; started $(date -Is)" | tee "$LOG/time.txt"
study=("$VENV/bin/modlens" study --executor "dask://127.0.0.1:$PORT" "$@")
if [[ -x /usr/bin/time ]]; then
  /usr/bin/time -v -a -o "$LOG/time.txt" "${study[@]}"
else  # no GNU time (Debian's package `time`): the start and finish stamps give the wall time
  "${study[@]}"
fi
echo "[study_on_dask] finished $(date -Is)" | tee -a "$LOG/time.txt"
