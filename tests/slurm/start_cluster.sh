#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine for the workflow test (tests/test_slurm.py).
#
# Installs Debian's slurm-wlm and munge when missing (needs root), writes slurm.conf and gres.conf
# into $TUNETRACE_SLURM_DIR (default /tmp/tunetrace-slurm), starts munged (unless one already
# answers), slurmctld and slurmd, and waits until the node accepts jobs. A cluster of this directory
# that is already up is reused, never restarted. The node declares the machine's real CPUs (nproc)
# and memory (MemTotal of /proc/meminfo), so an impossible memory request fails here as it would on a
# real node. There is no accounting database (as on many small sites): job status comes from squeue,
# and MinJobAge is large (finished jobs stay visible). GPUs: the real count (nvidia-smi -L); a machine
# without one declares TUNETRACE_SLURM_GPUS placeholder GPUs (default 1), GRES backed by /dev/null
# copies: Slurm schedules and counts GPU requests, no job sees a device. Clients need SLURM_CONF, printed last:
#   eval "$(tests/slurm/start_cluster.sh)"
# Stop with tests/slurm/stop_cluster.sh: it stops exactly what this script started (munged included).
set -euo pipefail

DIR="${TUNETRACE_SLURM_DIR:-/tmp/tunetrace-slurm}"
NODE="$(hostname -s)"
REAL_GPUS="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)"
GPUS="${TUNETRACE_SLURM_GPUS:-$([ "${REAL_GPUS:-0}" -gt 0 ] && echo "$REAL_GPUS" || echo 1)}"
CPUS="${TUNETRACE_SLURM_CPUS:-$(nproc)}"
MEM_MB="${TUNETRACE_SLURM_MEM_MB:-$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)}"

log() { echo "start_cluster: $*" >&2; }
die() { log "ERROR: $*"; for f in "$DIR"/slurmctld.log "$DIR"/slurmd.log; do [ -f "$f" ] && tail -20 "$f" >&2; done; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "slurm-wlm and munge are not installed and this is not root"
  log "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq slurm-wlm munge >&2 || die "apt-get install slurm-wlm munge failed"
fi
[ "$(id -u)" -eq 0 ] || die "slurmd must run as root"

running() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }
if running slurmctld && running slurmd \
   && SLURM_CONF="$DIR/slurm.conf" sinfo -h -n "$NODE" -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
  log "reusing the running cluster of $DIR (slurmctld $(cat "$DIR/slurmctld.pid"), slurmd $(cat "$DIR/slurmd.pid"))"
  echo "export SLURM_CONF=$DIR/slurm.conf"
  exit 0
fi

mkdir -p "$DIR"/state "$DIR"/spool
cat > "$DIR/slurm.conf" <<CONF
ClusterName=tunetrace
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=${TUNETRACE_SLURMCTLD_PORT:-6817}
SlurmdPort=${TUNETRACE_SLURMD_PORT:-6818}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MinJobAge=86400
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldParameters=enable_configless
SchedulerParameters=sched_interval=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB${GPUS/#[1-9]*/ Gres=gpu:$GPUS} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
# Slurm 22.05 drops GPUs without device files ("Removing file-less GPU"), so each GPU gets a
# placeholder device node (a copy of /dev/null): nothing opens it, there is no device cgroup,
# the count is what Slurm schedules.
mkdir -p "$DIR/dev"
: > "$DIR/gres.conf"
for i in $(seq 0 $((GPUS - 1))); do
  [ -e "$DIR/dev/gpu$i" ] || mknod "$DIR/dev/gpu$i" c 1 3 2>/dev/null || : > "$DIR/dev/gpu$i"
done
[ "$GPUS" -gt 0 ] && echo "NodeName=$NODE Name=gpu File=$DIR/dev/gpu[0-$((GPUS - 1))]" > "$DIR/gres.conf"
echo "# no cgroup plugin in use (task/none, proctrack/linuxproc)" > "$DIR/cgroup.conf"
export SLURM_CONF="$DIR/slurm.conf"

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  [ -f /etc/munge/munge.key ] || { mungekey --create >&2 || create-munge-key -f >&2; }
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged >&2 || die "munged did not start"
  # remembered, so stop_cluster.sh stops the munged this script started (and no other)
  for _ in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.25; done
  cp /run/munge/munged.pid "$DIR/munged.pid" || die "munged wrote no pid file (/run/munge/munged.pid)"
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n | unmunge >/dev/null || die "munge does not work"
fi

if [ -f /etc/slurm/slurm.conf ]; then
  log "WARNING: /etc/slurm/slurm.conf exists; jobs' srun will read it instead of this cluster's config"
fi
# A half-started cluster of this directory (one daemon dead or not answering) is stopped first.
for daemon in slurmd slurmctld; do
  running "$daemon" && { log "stopping the unresponsive $daemon of $DIR"; kill "$(cat "$DIR/$daemon.pid")"; sleep 1; }
  rm -f "$DIR/$daemon.pid"
done
what="$GPUS gpus"; [ "${REAL_GPUS:-0}" -gt 0 ] || what="$GPUS placeholder gpus (no device)"
log "starting slurmctld and slurmd ($NODE: $CPUS cpus, $MEM_MB MB, $what)"
slurmctld -c -f "$SLURM_CONF" >&2 || die "slurmctld did not start"
# Configless slurmd: it fetches the config from slurmctld and caches it in /run/slurm/conf, where
# every client on the node finds it, including the srun inside a job whose environment the slurm
# jobstep executor strips of SLURM_CONF.
slurmd --conf-server "127.0.0.1:${TUNETRACE_SLURMCTLD_PORT:-6817}" >&2 || die "slurmd did not start"

for _ in $(seq 60); do
  state="$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)"
  case "$state" in idle*|mix*|alloc*) break ;; esac
  sleep 1
done
case "${state:-}" in idle*|mix*|alloc*) ;; *) die "node $NODE did not become idle (state '${state:-none}')" ;; esac
probe_gpu=""; [ "$GPUS" -gt 0 ] && probe_gpu="--gpus=1"
probe="$(sbatch --parsable $probe_gpu --mem=10 -t 1 --wrap 'echo ok' -o /dev/null)" || die "sbatch of a probe job failed"
for _ in $(seq 60); do
  [ "$(squeue -h -t all -j "$probe" -o %T 2>/dev/null)" = COMPLETED ] && break
  sleep 1
done
[ "$(squeue -h -t all -j "$probe" -o %T)" = COMPLETED ] || die "probe job $probe did not complete"
log "cluster up; probe job $probe ($probe_gpu) completed"
echo "export SLURM_CONF=$SLURM_CONF"
