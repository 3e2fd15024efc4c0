#!/usr/bin/env bash
# Stop what tests/slurm/start_cluster.sh started, by the pid files it left in $TUNETRACE_SLURM_DIR:
# slurmd, slurmctld and, when that script started it, munged. A daemon it found running is left alone.
set -uo pipefail
DIR="${TUNETRACE_SLURM_DIR:-/tmp/tunetrace-slurm}"
for daemon in slurmd slurmctld munged; do
  pidfile="$DIR/$daemon.pid"
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    [ "${1:-}" = --quiet ] || echo "stop_cluster: stopped $daemon ($pid)" >&2
    # The configless slurmd's cached config: left behind, it points every scontrol at the stopped controller,
    # so each `snakemake` start (the Slurm executor plugin runs `scontrol show config` when imported, 10 s
    # timeout) waits 10 s, local runs included.
    [ "$daemon" = slurmd ] && rm -rf /run/slurm/conf
  fi
  rm -f "$pidfile"
done
