#!/usr/bin/env bash
# Runs the GNU parallel recipes of the README's "Many machines" section and checks them:
#   1. `--shard {}/3` over `::: 1 2 3` with -j 3, then the merge step: the bytes of one plain
#      run, each source in one shard, a merged manifest equal to the single run's;
#   2. `--shard auto --shard-count 3` (PARALLEL_SEQ) with -j 2, so that the job slots
#      (PARALLEL_JOBSLOT 1 and 2) differ from the shard count, killing job 2 mid-run (SIGTERM, as
#      parallel's own --timeout sends) and rerunning only it with --resume-failed: complete files
#      only, the same bytes, and the other jobs' outputs untouched.
# Exits 0 only if every check holds.
#
# Needs: parallel, jq, a built presize ($PRESIZE, default target/debug/presize).
set -euo pipefail

name=test-parallel
repo=$(cd "$(dirname "$0")/.." && pwd)
presize=${PRESIZE:-$repo/target/debug/presize}
start=$(date +%s%N)
# shellcheck source=deploy/test-common.sh
. "$repo/deploy/test-common.sh"

for cmd in parallel jq cmp; do
  command -v "$cmd" >/dev/null || fail "'$cmd' not found: apt-get install parallel jq"
done
[ -x "$presize" ] || fail "no presize binary at $presize (cargo build, or set PRESIZE)"

work=$(mktemp -d /tmp/presize-parallel.XXXXXX)
runner=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill "$runner"
    wait "$runner"
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "$name: FAIL: line $LINENO failed: $BASH_COMMAND" >&2' ERR

mkdir -p "$work/bin" "$work/src"
ln -s "$presize" "$work/bin/presize"
export PATH=$work/bin:$PATH
make_sources "$work/src"
sources=$(find "$work/src" -type f | wc -l)
single_run "$work/src"
say "$(parallel --version | head -n 1)"

# ---- 1. explicit shards ------------------------------------------------------------------------
mkdir -p "$work/explicit"
ln -s "$work/src" "$work/explicit/src"
say "parallel -j 3 presize src … --jobs 1 --shard {}/3 --manifest manifests/m-{}.json ::: 1 2 3"
(cd "$work/explicit" && parallel -j 3 presize src --out-dir site/img --width 320,640,1280 \
  --format avif,webp,jpeg --jobs 1 --shard {}/3 --manifest manifests/m-{}.json --progress never \
  ::: 1 2 3 >"$work/explicit.out" 2>&1) || fail "parallel exited $? (failed jobs): $(cat "$work/explicit.out")"
same_bytes "$work/explicit/site/img" "explicit shards"
merge_and_compare "$work/explicit" "explicit shards"
disjoint_parts "$work"/explicit/manifests/m-*.json
written=$(awk '$1 == "written" { n += $2 } END { print n + 0 }' "$work/explicit.out")
[ "$written" = "$sources" ] || fail "the three jobs say $written sources written, not $sources"
say "each of the $sources sources written by one job"

# ---- 2. --shard auto, one job killed and resumed ----------------------------------------------
# Job 2's outputs, known from the explicit run (the same hash decides both).
jq -r '.sources[].outputs[].path' "$work/explicit/manifests/m-2.json" | sort >"$work/victim-outputs"
victim_total=$(wc -l <"$work/victim-outputs")
mkdir -p "$work/auto"
ln -s "$work/src" "$work/auto/src"
auto() {
  cd "$work/auto" && parallel -j 2 --joblog jobs.log "$@" presize src --out-dir site/img \
    --width 320,640,1280 --format avif,webp,jpeg --jobs 1 --shard auto --shard-count 3 \
    --manifest manifests/m-{}.json --progress never ::: 1 2 3
}
say "parallel -j 2 --joblog jobs.log presize src … --jobs 1 --shard auto --shard-count 3 --manifest manifests/m-{}.json ::: 1 2 3"
auto >"$work/auto.out" 2>&1 &
runner=$!

# The presize started by job 2: a descendant of our parallel whose PARALLEL_SEQ is 2.
descendants() {
  local p
  for p in $(ps -o pid= --ppid "$1"); do
    echo "$p"
    descendants "$p"
  done
}
job2_pid() {
  local p exe
  exe=$(readlink -f "$presize")
  for p in $(descendants "$runner"); do
    [ "$(readlink -f "/proc/$p/exe" 2>/dev/null)" = "$exe" ] || continue
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'PARALLEL_SEQ=2' && echo "$p"
  done
  return 0
}
victim=
for _ in $(seq 600); do
  victim=$(job2_pid)
  if [ -n "$victim" ] && [ "$(present "$work/auto/site/img" "$work/victim-outputs")" -ge 1 ]; then
    break
  fi
  victim=
  sleep 0.1
done
[ -n "$victim" ] || fail "job 2 never ran with an output written; cannot kill it mid-run"
killed_at=$(present "$work/auto/site/img" "$work/victim-outputs")
slot=$(tr '\0' '\n' <"/proc/$victim/environ" | grep '^PARALLEL_JOBSLOT=' || echo 'no PARALLEL_JOBSLOT')
kill -TERM "$victim"
say "kill -TERM $victim (job 2: PARALLEL_SEQ=2, $slot) after $killed_at of its $victim_total outputs"
rc=0
wait "$runner" || rc=$?
runner=
[ "$rc" = 1 ] || fail "parallel exited $rc, not 1 (one failed job): $(cat "$work/auto.out")"
left=$(present "$work/auto/site/img" "$work/victim-outputs")
[ "$left" -lt "$victim_total" ] ||
  fail "job 2 finished all $victim_total outputs before the kill took effect; the test needs a longer job"
recorded=$(stopped_shard_ok "$work/auto/site/img" "$work/victim-outputs" "$work/auto/manifests/m-2.json")
say "parallel exited 1; job 2 left $left of $victim_total outputs, each complete (cmp), no temp file; its manifest records $recorded"
echo "  jobs.log:"
sed 's/^/    /' "$work/auto/jobs.log"

stamp "$work/auto/site/img" >"$work/before"
say "parallel --resume-failed (the same command)"
auto --resume-failed >"$work/resume.out" 2>&1 || fail "the resumed run failed: $(cat "$work/resume.out")"
echo "  jobs.log:"
sed 's/^/    /' "$work/auto/jobs.log"
reruns=$(awk 'NR > 1 { print $1 }' "$work/auto/jobs.log" | sort | uniq -c | awk '$1 > 1 { print $2 }')
[ "$reruns" = 2 ] || fail "--resume-failed reran job(s) '$reruns', not just job 2"
same_bytes "$work/auto/site/img" "auto shards after kill and resume"
merge_and_compare "$work/auto" "auto shards after kill and resume"
no_temp_files "$work/auto" "after resume"
changed=$(rewritten "$work/auto/site/img" "$work/before" /dev/null)
[ -z "$changed" ] || fail "outputs that existed before the resume were rewritten: $(echo "$changed" | head -n 5)"
say "only job 2 ran again; it made its $((victim_total - left)) missing outputs; none of the $(wc -l <"$work/before") existing files was rewritten"
say "all checks hold"
