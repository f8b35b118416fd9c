#!/usr/bin/env bash
# A throw-away one-node Slurm cluster for testing `wse-emu sweep --backend slurm`,
# built from Debian's slurm-wlm and munge packages without systemd.
#
#   scripts/slurm_test_cluster.sh start DIR   # prints "export SLURM_CONF=DIR/slurm.conf"
#   scripts/slurm_test_cluster.sh stop DIR    # stops the daemons it started, by PID
#
# Everything lives under DIR: a fresh munge key and socket (munged runs as the `munge`
# user), slurm.conf, state and spool folders, logs, pid files. The daemons run in the
# foreground mode (-D) in the background of this script; no accounting, no cgroups.
# Ports are picked free at start, so clusters of parallel test runs do not collide.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

stop() {
  local d=$1
  for name in slurmd slurmctld munged; do
    local pidfile="$d/$name.pid"
    [[ -f "$pidfile" ]] || continue
    local pid
    pid=$(cat "$pidfile")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [[ "$cmd" == stop ]]; then
  stop "$dir"
  exit 0
fi
[[ "$cmd" == start ]] || { echo "unknown command '$cmd'" >&2; exit 2; }

for tool in munged mungekey slurmctld slurmd sbatch squeue scontrol; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install_deps.sh" >&2; exit 3; }
done
if [[ $(id -u) -ne 0 ]]; then
  echo "the test cluster runs slurmd as root (it starts jobs as their user); run as root" >&2
  exit 3
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
trap 'stop "$dir"' ERR

# --- munge: its own key, socket and state, owned by the munge user -----------------
mdir="$dir/munge"
rm -rf "$mdir"
mkdir -p "$mdir"
chmod 0700 "$mdir"
mungekey --create --keyfile="$mdir/munge.key" --bits=1024 >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$mdir/munge.key" bs=1 count=128 status=none
chown -R munge:munge "$mdir"
chmod 0400 "$mdir/munge.key"
# munged checks that no folder above its files is writable by others (except sticky /tmp).
chmod o-w "$dir" 2>/dev/null || true
runuser -u munge -- munged --force \
  --key-file="$mdir/munge.key" --socket="$mdir/munge.socket" \
  --pid-file="$mdir/munged.pid" --log-file="$mdir/munged.log" --seed-file="$mdir/munged.seed"
for _ in $(seq 50); do [[ -s "$mdir/munged.pid" ]] && break; sleep 0.1; done
cp "$mdir/munged.pid" "$dir/munged.pid"

# --- slurm ---------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [[ "$slurmd_port" == "$ctld_port" ]]; do slurmd_port=$(free_port); done
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
host=$(hostname -s)
mkdir -p "$dir/state" "$dir/spool"
cat >"$dir/slurm.conf" <<EOF
# One-node test cluster (scripts/slurm_test_cluster.sh).
ClusterName=wsetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$mdir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.daemon.pid
SlurmdPidFile=$dir/slurmd.daemon.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MessageTimeout=10
ReturnToService=2
MaxArraySize=100001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >"$dir/slurmctld.stdout" 2>&1 &
echo $! >"$dir/slurmctld.pid"
slurmd -D -f "$SLURM_CONF" -N "$host" >"$dir/slurmd.stdout" 2>&1 &
echo $! >"$dir/slurmd.pid"

# Up when the node is idle and takes jobs.
for _ in $(seq 150); do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  if [[ "$state" == idle* ]]; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  for name in slurmctld slurmd; do
    if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
      echo "$name exited; its log:" >&2
      tail -20 "$dir/$name.log" "$dir/$name.stdout" >&2 2>/dev/null || true
      stop "$dir"
      exit 1
    fi
  done
  sleep 0.1
done
echo "the test cluster did not come up in 15 s; logs in $dir" >&2
tail -20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 2>/dev/null || true
stop "$dir"
exit 1
