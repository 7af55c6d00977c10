#!/usr/bin/env bash
# No Kubernetes cluster can run here, so deploy/kubernetes-indexed-job.yaml is checked offline:
#   1. against the Kubernetes OpenAPI schema, strictly (unknown fields refused), with
#      kubernetes-validate from PyPI (it ships the schemas), for the oldest and newest
#      Kubernetes versions it knows;
#   2. for the presize contract: an Indexed Job whose --shard-count equals completions, with
#      --shard=auto and JOB_COMPLETION_INDEX from the pod's annotation, one manifest per index;
#   3. by running the container's args as the kubelet would expand them (JOB_COMPLETION_INDEX =
#      0 … completions-1, /data remapped to a scratch folder) with --dry-run: every source is
#      planned by exactly one index.
# Exits 0 only if every check holds.
#
# Needs: python3 with venv (Debian: python3-venv), network access to PyPI, a built presize
# ($PRESIZE, default target/debug/presize).
set -euo pipefail

name=test-kubernetes
repo=$(cd "$(dirname "$0")/.." && pwd)
presize=${PRESIZE:-$repo/target/debug/presize}
validator=kubernetes-validate==1.37.0
start=$(date +%s%N)
# shellcheck source=deploy/test-common.sh
. "$repo/deploy/test-common.sh"

[ -x "$presize" ] || fail "no presize binary at $presize (cargo build, or set PRESIZE)"
work=$(mktemp -d /tmp/presize-kubernetes.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
trap 'echo "$name: FAIL: line $LINENO failed: $BASH_COMMAND" >&2' ERR

python3 -m venv "$work/venv" || fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$validator" ||
  fail "pip install $validator failed"
say "installed $validator"

job=$repo/deploy/kubernetes-indexed-job.yaml
schemas=$("$work/venv/bin/python" - <<'EOF'
import kubernetes_validate.utils as u
v = sorted(u.all_versions(), key=lambda s: tuple(int(x) for x in s.split(".")))
print(v[0], v[-1])
EOF
)
for version in $schemas; do
  "$work/venv/bin/kubernetes-validate" --strict -k "$version" "$job" ||
    fail "$job does not validate against Kubernetes $version"
done

make_sources "$work/data/src"
"$work/venv/bin/python" - "$job" "$presize" "$work/data" <<'EOF' || fail "the Job's presize contract does not hold"
import json, subprocess, sys, yaml

job_file, presize, data = sys.argv[1:]
with open(job_file) as f:
    job = yaml.safe_load(f)
spec = job["spec"]
assert job["kind"] == "Job" and spec["completionMode"] == "Indexed", "not an Indexed Job"
n = spec["completions"]
(container,) = spec["template"]["spec"]["containers"]
args = container["args"]
assert "--shard=auto" in args, "the pods do not use --shard=auto"
assert f"--shard-count={n}" in args, f"--shard-count differs from completions ({n})"
env = {e["name"]: e for e in container.get("env", [])}
ref = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
assert ref == "metadata.annotations['batch.kubernetes.io/job-completion-index']", ref
assert any("$(JOB_COMPLETION_INDEX)" in a for a in args if a.startswith("--manifest")), \
    "the pods would share one manifest"

# Each pod as the kubelet starts it: $(JOB_COMPLETION_INDEX) expanded in args, the variable in
# the environment; --dry-run --json lists what it would make.
planned = {}
for index in range(n):
    argv = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)).replace("/data/", data + "/")
            for a in args]
    out = subprocess.run([presize, *argv, "--dry-run", "--json"], check=True,
                         capture_output=True, text=True,
                         env={"JOB_COMPLETION_INDEX": str(index), "PATH": "/usr/bin:/bin"}).stdout
    for line in out.splitlines():
        rec = json.loads(line)
        if rec["type"] == "file":
            assert rec["status"] == "planned", rec
            assert rec["input"] not in planned, f"{rec['input']} planned by {planned[rec['input']]} and {index}"
            planned[rec["input"]] = index
import pathlib
sources = {str(p) for p in pathlib.Path(data, "src").rglob("*") if p.is_file()}
assert set(planned) == sources, f"planned {len(planned)} of {len(sources)} sources"
counts = [list(planned.values()).count(i) for i in range(n)]
print(f"{n} pods (JOB_COMPLETION_INDEX 0..{n - 1}) plan {len(sources)} sources, each once; per pod: {counts}")
EOF
say "the Job validates (Kubernetes $(echo "$schemas" | tr ' ' ',' | sed 's/,/ and /'), strict) and its pods split the sources"
say "all checks hold"
