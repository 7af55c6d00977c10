#!/usr/bin/env bash
# The cost of --isolate (issue #18): ../shared/bench/compare.py on one folder, presize without
# and with --isolate in turn, PAIRS times (each call: a warm-up and ROUNDS runs), then the
# median wall and CPU time of each side and their ratios. The figures in docs/RELIABILITY.md.
#
#   benches/isolate_cost.sh [DIR] [PAIRS] [JOBS]      (defaults: the corpus photos, 5, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-../shared/corpus/photos}
pairs=${2:-5}
jobs=${3:-2}
compare=../shared/bench/compare.py
bin=target/release/presize
[ -x "$bin" ] || cargo build --release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq "$pairs"); do
  for side in plain isolate; do
    args=()
    [ "$side" = isolate ] && args=(--presize-args=--isolate)
    python3 "$compare" --presize "$bin" --images "$dir" --tools presize --rounds 5 \
      --jobs "$jobs" --json "${args[@]}" | tail -1 > "$out/$side.$i.json"
  done
done
python3 - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
rows = {s: [json.load(open(f"{out}/{s}.{i}.json"))["rows"][0] for i in range(1, pairs + 1)]
        for s in ("plain", "isolate")}
for key in ("wall_s", "cpu_s"):
    a = statistics.median(r[key] for r in rows["plain"])
    b = statistics.median(r[key] for r in rows["isolate"])
    print(f"{key}: without {a:.3f}  with --isolate {b:.3f}  ratio {b / a:.3f}")
PY
