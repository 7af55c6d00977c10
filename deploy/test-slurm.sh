#!/usr/bin/env bash
# Runs deploy/slurm-array.sh, unchanged, on a real single-node Slurm cluster that this script
# sets up on the machine (as root, no systemd, no cgroups, no DNS), and checks what the README's
# "Many machines" section promises:
#   1. a job array of 4 tasks plus the merge step gives the bytes of one plain run, each output
#      written by one task, and a merged manifest equal to the single run's;
#   2. a task cancelled mid-run (scancel) leaves complete files only, and requeueing that one
#      task completes the build with the same bytes; the other tasks, submitted again with it,
#      find their outputs fresh and rewrite none of them;
#   3. that one task submitted alone (sbatch --array=K) is refused and writes nothing.
# Exits 0 only if every check holds. A daemon that cannot start is a failure, with its log.
# Everything lives in one temporary folder; the daemons started here are stopped by their pid
# and the folder removed on every exit (trap).
#
# Needs: munge, slurmctld, slurmd, slurm-client (Debian 12: Slurm 22.05), jq, a built presize
# ($PRESIZE, default target/debug/presize).
set -euo pipefail

name=test-slurm
repo=$(cd "$(dirname "$0")/.." && pwd)
presize=${PRESIZE:-$repo/target/debug/presize}
tasks=4
start=$(date +%s%N)
# shellcheck source=deploy/test-common.sh
. "$repo/deploy/test-common.sh"

[ "$(id -u)" = 0 ] || fail "must run as root (it starts munged, slurmctld and slurmd)"
for cmd in munged munge slurmctld slurmd sbatch sinfo squeue scontrol scancel jq cmp; do
  command -v "$cmd" >/dev/null || fail "'$cmd' not found: apt-get install munge slurmctld slurmd slurm-client jq"
done
[ -x "$presize" ] || fail "no presize binary at $presize (cargo build, or set PRESIZE)"

work=$(mktemp -d /tmp/presize-slurm.XXXXXX)
# munged refuses a socket in a folder that others cannot traverse.
chmod 755 "$work"
daemons=() # pid files of the daemons started here, stopped in reverse order

# Waits up to 5 s for the processes $1 to end, then kills what is left.
wait_gone() {
  local pid alive
  for _ in $(seq 50); do
    alive=
    for pid in $1; do kill -0 "$pid" 2>/dev/null && alive=yes; done
    [ -z "$alive" ] && return 0
    sleep 0.1
  done
  for pid in $1; do kill -KILL "$pid" 2>/dev/null; done
  return 0
}

cleanup() {
  local rc=$? pid i slurm_pids=
  set +e
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$work/slurmctld.pid" ]; then
    # Jobs left running would outlive slurmd (slurmstepd is its own process).
    scancel --quiet --full --user=root 2>/dev/null
    for i in $(seq 50); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  # slurmd and slurmctld together (each takes a moment to save its state), munged after them.
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
    pid=$(cat "${daemons[i]}" 2>/dev/null) || continue
    [ "$i" = 0 ] && [ ${#daemons[@]} -gt 1 ] && wait_gone "$slurm_pids"
    kill "$pid" 2>/dev/null
    slurm_pids+=" $pid"
  done
  wait_gone "$slurm_pids"
  if [ $rc -ne 0 ] && [ -d "$work/log" ]; then
    for f in "$work"/log/*; do
      echo "---- last lines of $f" >&2
      tail -n 15 "$f" >&2
    done
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "test-slurm: FAIL: line $LINENO failed: $BASH_COMMAND" >&2' ERR

# Starts a self-daemonising program and waits for its pid file, or fails with its log.
start_daemon() {
  local name=$1 pidfile=$2 log=$3
  shift 3
  "$@" || fail "$name did not start (exit $?): $(tail -n 5 "$log" 2>/dev/null)"
  for _ in $(seq 50); do
    [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && break
    sleep 0.1
  done
  [ -s "$pidfile" ] || fail "$name wrote no pid file $pidfile: $(tail -n 5 "$log" 2>/dev/null)"
  daemons+=("$pidfile")
}

# ---- the cluster ----------------------------------------------------------------------------
say "setting up a one-node cluster in $work"
mkdir -p "$work/munge" "$work/state" "$work/spool" "$work/log" "$work/bin"
chmod 755 "$work/munge"
head -c 1024 /dev/urandom >"$work/munge/munge.key"
chmod 400 "$work/munge/munge.key"
# A private munged (own key and socket) leaves any system munge alone.
start_daemon munged "$work/munge/munged.pid" "$work/log/munged.log" \
  munged --socket="$work/munge/munge.socket" --key-file="$work/munge/munge.key" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
  --seed-file="$work/munge/munged.seed"
munge -S "$work/munge/munge.socket" -n | unmunge -S "$work/munge/munge.socket" >/dev/null ||
  fail "munged runs but a credential does not round-trip (see $work/log/munged.log)"

host=$(hostname -s)
mem_mb=$(awk '/^MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
# 127.0.0.1 everywhere, so no name needs resolving; proctrack/linuxproc and task/none need no
# cgroups; ports away from the defaults so a real Slurm on the machine is not disturbed.
cat >"$work/slurm.conf" <<EOF
ClusterName=presize-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
MinJobAge=600
NodeName=localnode NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=localnode Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
# -c: start from a clean state, whatever an earlier run left.
start_daemon slurmctld "$work/slurmctld.pid" "$work/log/slurmctld.log" \
  slurmctld -c -f "$SLURM_CONF"
start_daemon slurmd "$work/slurmd.pid" "$work/log/slurmd.log" \
  slurmd -f "$SLURM_CONF" -N localnode
state=
for _ in $(seq 150); do
  state=$(sinfo -h -n localnode -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "$state" = idle ] || fail "the node is '${state:-not reported}' after 30 s instead of idle"
say "cluster up:"
sinfo
scontrol show node localnode | grep -E 'NodeName|CPUTot|RealMemory|State='

# ---- the data -------------------------------------------------------------------------------
# -j 1 per task (--cpus-per-task=1) keeps a task running long enough to be cancelled mid-run.
mkdir -p "$work/run/logs"
make_sources "$work/run/src"
ln -s "$presize" "$work/bin/presize"
export PATH=$work/bin:$PATH
sources=$(find "$work/run/src" -type f | wc -l)
single_run "$work/run/src"

# ---- 1. the array ----------------------------------------------------------------------------
# The script as shipped; the command line only fits it to this 2-core node (it asks for 8
# tasks of 4 CPUs) — options given to sbatch override the script's #SBATCH lines.
say "sbatch --wait --array=0-$((tasks - 1)) --cpus-per-task=1 deploy/slurm-array.sh"
job=$(cd "$work/run" && sbatch --parsable --wait --array=0-$((tasks - 1)) --cpus-per-task=1 \
  "$repo/deploy/slurm-array.sh") || fail "sbatch --wait reported a failed task (exit $?): $(cat "$work"/run/logs/*)"
job=${job%%;*}
say "array job $job done; its tasks as slurmctld recorded them:"
for ((t = 0; t < tasks; t++)); do
  line=$(scontrol show job "${job}_$t" | grep -oE 'JobState=[A-Z]+|ExitCode=[0-9:]+' | tr '\n' ' ')
  echo "  ${job}_$t: $line"
  case "$line" in *JobState=COMPLETED*ExitCode=0:0*) ;; *) fail "task $t: $line" ;; esac
done
same_bytes "$work/run/site/img" "array of $tasks"
merge_and_compare "$work/run" "array of $tasks"

# Each source is in exactly one task's manifest, and the tasks' logs count each written once.
disjoint_parts "$work"/run/manifests/m-*.json
written=$(cat "$work"/run/logs/presize-"$job"-*.out | awk '$1 == "written" { n += $2 } END { print n + 0 }')
[ "$written" = "$sources" ] || fail "the tasks' logs say $written sources written, not $sources"
for ((t = 0; t < tasks; t++)); do
  echo "  task $t: $(jq '.sources | length' "$work/run/manifests/m-$t.json") sources," \
    "log: $(grep -E '^ *written' "$work/run/logs/presize-$job-$t.out" | tr -s ' ')"
done
say "each source written by exactly one task ($written in all)"

# ---- 2. cancel one task mid-run, requeue it ---------------------------------------------------
# The task with the most sources is cancelled. Its outputs and manifest are removed and the
# whole array submitted again: the other tasks must find everything fresh and write nothing.
victim=0
most=0
for ((t = 0; t < tasks; t++)); do
  n=$(jq '.sources | length' "$work/run/manifests/m-$t.json")
  if [ "$n" -gt "$most" ]; then
    most=$n
    victim=$t
  fi
done
jq -r '.sources[].outputs[].path' "$work/run/manifests/m-$victim.json" | sort >"$work/victim-outputs"
victim_total=$(wc -l <"$work/victim-outputs")
while read -r f; do rm "$work/run/site/img/$f"; done <"$work/victim-outputs"
rm "$work/run/manifests/m-$victim.json" "$work/run/site/img.json"
# Identity of every other output (inode, mtime in ns): a rewrite, even of the same bytes,
# changes both, since presize writes a temp file and renames it.
stamp "$work/run/site/img" >"$work/before"

victim_present() { present "$work/run/site/img" "$work/victim-outputs"; }

say "resubmitting the array; task $victim ($most sources, $victim_total outputs) will be cancelled"
# No --wait here: its polling back-off would add up to half a minute after the last task.
job2=$(cd "$work/run" && sbatch --parsable --array=0-$((tasks - 1)) --cpus-per-task=1 \
  "$repo/deploy/slurm-array.sh") || fail "sbatch failed"
job2=${job2%%;*}
cancelled_at=
for _ in $(seq 600); do
  if [ "$(squeue -h -j "${job2}_$victim" -o %T 2>/dev/null)" = RUNNING ] &&
    [ "$(victim_present)" -ge 1 ]; then
    cancelled_at=$(victim_present)
    scancel "${job2}_$victim"
    break
  fi
  sleep 0.1
done
[ -n "$cancelled_at" ] || fail "task $victim never ran with an output written; cannot cancel it mid-run"
say "scancel ${job2}_$victim after it had written $cancelled_at of its $victim_total outputs"
for _ in $(seq 1200); do
  [ -z "$(squeue -h -j "$job2" -o %i 2>/dev/null)" ] && break
  sleep 0.1
done
[ -z "$(squeue -h -j "$job2" -o %i)" ] || fail "array $job2 still running 2 minutes after the cancel"
for ((t = 0; t < tasks; t++)); do
  line=$(scontrol show job "${job2}_$t" | grep -oE 'JobState=[A-Z]+|ExitCode=[0-9:]+' | tr '\n' ' ')
  echo "  ${job2}_$t: $line"
  if [ "$t" = "$victim" ]; then
    case "$line" in *JobState=CANCELLED*) ;; *) fail "task $t is $line, not CANCELLED" ;; esac
  else
    case "$line" in *JobState=COMPLETED*ExitCode=0:0*) ;; *) fail "task $t: $line" ;; esac
  fi
done
grep -q CANCELLED "$work/run/logs/presize-$job2-$victim.out" ||
  fail "task $victim's log does not say it was cancelled"
sed 's/^/  log: /' "$work/run/logs/presize-$job2-$victim.out"

# What the cancelled task left: complete outputs only, no temp file. presize, stopped by
# SIGTERM, finishes the image in hand and records what it made in its manifest; every output
# the manifest lists must be there, complete.
left=$(victim_present)
[ "$left" -lt "$victim_total" ] ||
  fail "task $victim finished all $victim_total outputs before the cancel took effect; the test needs a longer task"
recorded=$(stopped_shard_ok "$work/run/site/img" "$work/victim-outputs" "$work/run/manifests/m-$victim.json")
say "cancelled task $victim left $left of $victim_total outputs, each complete (cmp), no temp file; its manifest records $recorded"

stamp "$work/run/site/img" >"$work/after-cancel"

# Requeue only that task, in its own array (so it keeps its index and the array's count). A
# requeued job waits 2 minutes by default; StartTime=now lets it start at once.
scontrol requeue "${job2}_$victim" || fail "scontrol requeue ${job2}_$victim failed"
scontrol update JobId="${job2}_$victim" StartTime=now
state=
requeued=
for _ in $(seq 600); do
  state=$(scontrol show job "${job2}_$victim" | grep -oE 'JobState=[A-Z]+' | cut -d= -f2)
  case "$state" in
    PENDING | CONFIGURING | RUNNING | COMPLETING) requeued=yes ;;
    *) [ -n "$requeued" ] && break ;;
  esac
  sleep 0.2
done
exit_code=$(scontrol show job "${job2}_$victim" | grep -oE ' ExitCode=[0-9:]+' | cut -d= -f2)
say "requeued task ${job2}_$victim: JobState=$state ExitCode=$exit_code"
if [ "$state" != COMPLETED ] || [ "$exit_code" != 0:0 ]; then
  fail "the requeued task ended $state $exit_code"
fi

same_bytes "$work/run/site/img" "after cancel and requeue"
merge_and_compare "$work/run" "after cancel and requeue"
no_temp_files "$work/run" "after requeue"
# The other tasks' outputs are the very same files as before the resubmission.
changed=$(rewritten "$work/run/site/img" "$work/before" "$work/victim-outputs")
[ -z "$changed" ] || fail "outputs of tasks that were not cancelled were rewritten: $(echo "$changed" | head -n 5)"
say "the other $((tasks - 1)) tasks, submitted again, rewrote none of their $(wc -l <"$work/before") outputs"
changed=$(rewritten "$work/run/site/img" "$work/after-cancel" /dev/null)
[ -z "$changed" ] || fail "the requeued task rewrote outputs it had made before the cancel: $(echo "$changed" | head -n 5)"
say "the requeued task made the $((victim_total - left)) missing outputs and rewrote none of the $left it had made"

# ---- 3. one task submitted alone is refused -----------------------------------------------
# `sbatch --array=K` makes an array of one task: --shard auto must refuse it (it cannot know
# the build's shard count) rather than process the whole tree as shard 1 of 1.
stamp "$work/run/site/img" >"$work/before"
manifests_before=$(cat "$work"/run/manifests/m-*.json | md5sum)
rc=0
job3=$(cd "$work/run" && sbatch --parsable --wait --array="$victim" --cpus-per-task=1 \
  "$repo/deploy/slurm-array.sh") || rc=$?
[ $rc -ne 0 ] || fail "sbatch --array=$victim alone succeeded; --shard auto should refuse it"
job3=${job3%%;*}
grep -q "is the only task of its array" "$work/run/logs/presize-$job3-$victim.out" ||
  fail "task $victim alone failed, but not with the lone-task message: $(cat "$work/run/logs/presize-$job3-$victim.out")"
[ -z "$(comm -3 <(stamp "$work/run/site/img") "$work/before")" ] || fail "the refused task changed outputs"
[ "$(cat "$work"/run/manifests/m-*.json | md5sum)" = "$manifests_before" ] || fail "the refused task changed a manifest"
say "sbatch --array=$victim alone: exit $rc, nothing written; its log says:"
grep "only task" "$work/run/logs/presize-$job3-$victim.out" | sed 's/^/  /'
say "all checks hold"
