#!/usr/bin/env bash
# Stop the daemons started by tests/slurm/start_cluster.sh (by their pid files only).
set -uo pipefail
DIR="${TUNETRACE_SLURM_DIR:-/tmp/tunetrace-slurm}"
for daemon in slurmd slurmctld; do
  pidfile="$DIR/$daemon.pid"
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    [ "${1:-}" = --quiet ] || echo "stop_cluster: stopped $daemon ($pid)" >&2
  fi
  rm -f "$pidfile"
done
