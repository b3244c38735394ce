#!/bin/bash
# A one-node Slurm cluster on this machine for the scale-out test: munged, slurmctld and slurmd
# with their state under DIR (default /tmp/cpt-slurm). Needs root and Debian's slurm-wlm + munge
# (.ci/run installs them). Usage: cluster.sh start|stop [DIR]. Clients: export SLURM_CONF=DIR/slurm.conf
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:-/tmp/cpt-slurm}
host=$(hostname -s)
if [ "$cmd" = stop ]; then
  pids=$(for p in slurmd slurmctld; do [ -f "$dir/$p.pid" ] && cat "$dir/$p.pid"; done)
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  # Wait for them to exit: slurmctld saves its state on the way out, into $dir.
  for _ in $(seq 1 50); do
    alive=0; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.2
  done
  exit 0
fi
mkdir -p "$dir/state" "$dir/spool"
cat > "$dir/slurm.conf" <<CONF
ClusterName=cpt-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=cpt Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
pgrep -x munged >/dev/null || { mkdir -p /run/munge && chown munge:munge /run/munge && runuser -u munge -- /usr/sbin/munged; }
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld -f "$dir/slurm.conf"
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd -f "$dir/slurm.conf"
for _ in $(seq 1 30); do
  sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && { echo "slurm up: $(sinfo -h -o '%P %D %T %c')"; exit 0; }
  sleep 1
done
echo "slurm did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
