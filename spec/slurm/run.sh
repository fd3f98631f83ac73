#!/bin/bash
# make test-slurm: a real Slurm on this machine (docs/sweeps.md, "Is the Slurm path tested?").
# Installs Debian's slurm-wlm and munge (apt-get, as root) when missing; starts munged, slurmctld and slurmd with a
# minimal configuration in a temporary directory; plans a small sweep (synthetic zoo, hybrid + ridge, 2 trials), runs
# it as a job array, merges it and compares with `nasflat run` of the same options in one process; then runs it
# again with the graph network (a pre-training array the trial array depends on) and compares again; then a small
# design study (`sweep plan study`: pre-training array, dependent trial array) against `nasflat study` and a small
# search bar (`sweep plan search`) against `nasflat search --bar`; then a job killed with scancel. The daemons it
# started are stopped by their pids. When the daemons cannot start here, it prints "PENDING: <reason>" and exits 77:
# never a silent pass.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
export OPENBLAS_NUM_THREADS=1
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/${BUILD:-build}/lua/?.so;;"
export NASFLAT_BUILD="${BUILD:-build}"   # bin/nasflat: this checkout's build directory
NF="$ROOT/bin/nasflat"
T=$(mktemp -d /tmp/nasflat-slurm.XXXXXX)
PIDS=()

pending() { echo "test-slurm: PENDING: $*"; stop; exit 77; }
failed() { echo "test-slurm: FAILED: $*"; for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }; done; stop; exit 1; }
stop() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  done
  PIDS=()
}
trap 'stop' EXIT

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
  [ "$(id -u)" = 0 ] || pending "slurm-wlm and munge are not installed and this is not root (apt-get needs root)"
  echo "test-slurm: installing slurm-wlm and munge (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >"$T/apt.log" 2>&1 \
    || pending "apt-get install slurm-wlm munge failed: $(tail -n 1 "$T/apt.log")"
fi
[ "$(id -u)" = 0 ] || pending "the daemons are started as root here (SlurmUser=root); run as root"

HOST=$(hostname -s)
CPUS=$(nproc)
PORT=$((20000 + RANDOM % 20000))
mkdir -p "$T/state" "$T/spool" "$T/munge"
chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$T/munge/munge.key"

# munged: its own key, socket, pid and log files in the temp dir
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" --pid-file="$T/munge/munged.pid" \
  --log-file="$T/munged.log" --seed-file="$T/munge/munged.seed" >"$T/munged.out" 2>&1 \
  || pending "munged does not start here: $(tail -n 1 "$T/munged.out") $(tail -n 1 "$T/munged.log" 2>/dev/null)"
for _ in $(seq 50); do [ -s "$T/munge/munged.pid" ] && break; sleep 0.1; done
PIDS+=("$(cat "$T/munge/munged.pid" 2>/dev/null)")
[ -S "$T/munge/munge.sock" ] || pending "munged started but made no socket"

cat >"$T/slurm.conf" <<CONF
ClusterName=nftest
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.sock
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MaxArraySize=10001
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$T/slurm.conf"

slurmctld -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 || pending "slurmctld does not start here: $(tail -n 2 "$T/slurmctld.out")"
for _ in $(seq 50); do [ -s "$T/slurmctld.pid" ] && break; sleep 0.1; done
PIDS+=("$(cat "$T/slurmctld.pid" 2>/dev/null)")
slurmd -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 || pending "slurmd does not start here: $(tail -n 2 "$T/slurmd.out")"
for _ in $(seq 50); do [ -s "$T/slurmd.pid" ] && break; sleep 0.1; done
PIDS+=("$(cat "$T/slurmd.pid" 2>/dev/null)")
up=
for _ in $(seq 100); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then up=1; break; fi
  sleep 0.2
done
[ -n "$up" ] || pending "the node never became idle: $(sinfo -N 2>&1 | tail -n 1); slurmd: $(tail -n 2 "$T/slurmd.log" 2>/dev/null)"
echo "test-slurm: munged, slurmctld, slurmd up (pids ${PIDS[*]}), node $HOST with $CPUS CPUs"

# wait_sweep DIR: until no job of ours is queued or running
wait_queue() {
  for _ in $(seq 3000); do
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  return 1
}

check() {   # check NAME PLAN-OPTIONS... : plan, submit, wait, merge, compare with nasflat run
  local name=$1; shift
  local dir="$T/$name"
  "$NF" sweep plan --data synthetic "$@" --out "$dir" || failed "$name: sweep plan"
  local t0; t0=$(date +%s.%N)
  "$NF" sweep slurm "$dir" --array-max 2 --time 0:10:00 || failed "$name: sweep slurm"
  wait_queue || failed "$name: the array did not finish in 10 minutes"
  local t1; t1=$(date +%s.%N)
  "$NF" sweep status "$dir"
  "$NF" sweep merge "$dir" --json --out "$dir/merged" >"$dir/merged.json" || failed "$name: sweep merge"
  "$NF" run --data synthetic "$@" --json --quiet --out "$dir/single" >"$dir/single.json" || failed "$name: nasflat run"
  cmp "$dir/single/ZD-seed1.csv" "$dir/merged/ZD-seed1.csv" || failed "$name: the merged CSV differs from nasflat run's"
  lua5.4 "$ROOT/spec/slurm/same.lua" "$dir/single.json" "$dir/merged.json" || failed "$name: the merged JSON differs"
  echo "test-slurm: $name: $(ls "$dir"/jobs/*.json | wc -l) jobs in $(ls "$dir"/slurm/*.out | wc -l) array elements," \
    "$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s wall; merged CSV and JSON identical to nasflat run"
}

check hybrid --predictor hybrid,ridge --trials 2 --budget 10
check gnn --predictor nasflat --trials 1 --budget 10 --epochs 3 --samples 32 --transfer-epochs 3

# the design study as a sweep: a pre-training array, then the trial array after it (afterok); merged, it must print
# and write what `nasflat study` does in one process (the wall times aside)
no_times() { sed -E -e 's/; [0-9]+ s$/; - s/' -e 's/wall [0-9]+ s/wall - s/' -e '/^wall clock per /d' -e '/^bar run: /d' "$1"; }
STUDY=(--data synthetic --axes sampler_encoding,budget --samplers random,kmeancosine --encodings struct --curve 5,10
  --budget 5 --trials 2 --samples 16 --epochs 1 --transfer-epochs 1 --hidden 8)
dir="$T/study"
"$NF" sweep plan study "${STUDY[@]}" --out "$dir" || failed "study: sweep plan study"
t0=$(date +%s.%N)
"$NF" sweep slurm "$dir" --array-max 2 --time 0:10:00 | tee "$T/study-slurm.out" || failed "study: sweep slurm"
grep -q -- "--dependency=afterok:" "$T/study-slurm.out" || failed "study: no trial array depending on the pre-training"
wait_queue || failed "study: the arrays did not finish in 10 minutes"
t1=$(date +%s.%N)
"$NF" sweep status "$dir"
"$NF" sweep merge "$dir" --out "$dir/merged" >"$dir/merged.txt" || failed "study: sweep merge"
"$NF" sweep merge "$dir" --json --out "$dir/merged-json" >"$dir/merged.json" || failed "study: sweep merge --json"
"$NF" study "${STUDY[@]}" --quiet --out "$dir/single" >"$dir/single.txt" || failed "study: nasflat study"
cmp "$dir"/single/study-*.csv "$dir"/merged/study-*.csv || failed "study: the merged CSV differs from nasflat study's"
lua5.4 "$ROOT/spec/slurm/same.lua" "$dir"/single/study-*.json "$dir/merged.json" || failed "study: the merged JSON differs"
diff <(no_times "$dir/single.txt") <(no_times "$dir/merged.txt") || failed "study: the merged tables differ"
echo "test-slurm: study: $(ls "$dir"/jobs/*.json | wc -l) jobs ($(ls "$dir"/jobs/pretrain.*.json | wc -l) pre-training" \
  "array first) in $(ls "$dir"/slurm/*.out | wc -l) array elements, $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s wall;" \
  "merged tables, CSV and JSON identical to nasflat study"

# the search bar as a sweep: task x target x budget quantile x trial, one array
BAR=(--data synthetic --tasks ZD --objective flops --targets gpu_server_b_b1,cpu_mobile_mid --quantiles 0.25,0.5
  --trials 2 --measurements 22)
dir="$T/search"
"$NF" sweep plan search "${BAR[@]}" --out "$dir" || failed "search: sweep plan search"
t0=$(date +%s.%N)
"$NF" sweep slurm "$dir" --array-max 2 --time 0:10:00 || failed "search: sweep slurm"
wait_queue || failed "search: the array did not finish in 10 minutes"
t1=$(date +%s.%N)
"$NF" sweep status "$dir"
"$NF" sweep merge "$dir" >"$dir/merged.txt" || failed "search: sweep merge"
"$NF" sweep merge "$dir" --json >"$dir/merged.json" || failed "search: sweep merge --json"
"$NF" search --bar "${BAR[@]}" --quiet >"$dir/single.txt" || failed "search: nasflat search --bar"
"$NF" search --bar "${BAR[@]}" --quiet --json >"$dir/single.json" || failed "search: nasflat search --bar --json"
lua5.4 "$ROOT/spec/slurm/same.lua" "$dir/single.json" "$dir/merged.json" || failed "search: the merged JSON differs"
diff <(no_times "$dir/single.txt") <(no_times "$dir/merged.txt") || failed "search: the merged tables differ"
echo "test-slurm: search: $(ls "$dir"/jobs/*.json | wc -l) jobs in $(ls "$dir"/slurm/*.out | wc -l) array elements," \
  "$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s wall; merged tables and JSON identical to nasflat search --bar"

# a killed job: one job's result removed, resubmitted, cancelled (scancel) while it runs: status names it as
# killed, merge refuses, slurm --resume submits only it, and the merge then matches again
dir="$T/hybrid"
victim=$(ls "$dir"/jobs/*.json | head -n 1)
key=$(basename "$victim" .json)
rm -f "$dir/jobs/$key.json" "$dir/jobs/$key.csv"
id=$("$NF" sweep status "$dir" | sed -n 's/^missing  job \([0-9]*\) .*/\1/p')
[ -n "$id" ] || failed "status does not list the removed job as missing"
sid=$("$NF" sweep slurm "$dir" --resume --json | sed -n 's/.*"slurm_jobs":\["\([0-9]*\)".*/\1/p')
[ -n "$sid" ] || failed "slurm --resume gave no Slurm job id"
for _ in $(seq 600); do [ -f "$dir/jobs/$key.running" ] && break; sleep 0.05; done
[ -f "$dir/jobs/$key.running" ] || failed "job $id never started"
scancel "$sid"
wait_queue || failed "the cancelled job did not leave the queue"
sleep 0.5
"$NF" sweep status "$dir" | tee "$T/status.out"
grep -q "^missing  job $id .*: killed: pid .*Slurm job ${sid}_$id" "$T/status.out" || failed "status does not report the killed job"
"$NF" sweep merge "$dir" >/dev/null 2>"$T/merge.err" && failed "merge of a half-finished sweep succeeded"
echo "test-slurm: merge refused: $(cat "$T/merge.err")"
"$NF" sweep slurm "$dir" --resume | tee "$T/resume.out" || failed "slurm --resume"
grep -q -- "'--array=$id'" "$T/resume.out" || failed "resume did not submit only job $id"
wait_queue || failed "the resumed job did not finish"
"$NF" sweep merge "$dir" --json --out "$dir/merged2" >/dev/null || failed "merge after resume"
cmp "$dir/single/ZD-seed1.csv" "$dir/merged2/ZD-seed1.csv" || failed "resumed merge differs"
echo "test-slurm: killed job (scancel) reported by status, resubmitted alone by --resume, merged identical"
stop
trap - EXIT
rm -rf "$T"
echo "test-slurm: ok"
