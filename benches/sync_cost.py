#!/usr/bin/env python3
"""What syncing outputs to disk costs (issue #18): presize with --no-sync, with the default
(fsync of each output before its rename), and with --no-sync followed by one `sync -f` of the
output folder (one syncfs, the alternative for manifest builds), interleaved: every round runs
each variant once, in a shuffled order, after a warm-up round. Each run writes into a fresh
output folder (removed, then `sync`, outside the timing), so no variant replaces files.

Prints the median wall time of each variant and the median over rounds of its ratio to
--no-sync in the same round (> 1: slower than not syncing).

usage: benches/sync_cost.py PRESIZE IMAGES ROUNDS [presize arguments...]
  e.g. benches/sync_cost.py target/release/presize ../shared/corpus/photos 9 -w 800 -j 2
"""
import os, random, shutil, statistics, subprocess, sys, tempfile, time

exe, images, rounds, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
work = tempfile.mkdtemp(prefix="presize-sync-cost-")
out = os.path.join(work, "out")
base = [exe, images, "-o", out, "-q", "--progress", "never"]
variants = {
    "--no-sync": (base + ["--no-sync"] + extra, False),
    "fsync per file (default)": (base + extra, False),
    "--no-sync + one syncfs": (base + ["--no-sync"] + extra, True),
}
times = {k: [] for k in variants}
random.seed(18)
for r in range(rounds + 1):
    order = list(variants.items())
    random.shuffle(order)
    for name, (cmd, syncfs) in order:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["sync"])
        t = time.perf_counter()
        p = subprocess.run(cmd)
        if syncfs:
            subprocess.run(["sync", "-f", out], check=True)
        dt = time.perf_counter() - t
        assert p.returncode in (0, 1), f"{cmd}: exit {p.returncode}"
        if r > 0:
            times[name].append(dt)
shutil.rmtree(work, ignore_errors=True)
print(f"{'variant':26} {'median s':>9} {'ratio':>7}")
for name, ts in times.items():
    ratio = statistics.median(a / b for a, b in zip(ts, times["--no-sync"]))
    print(f"{name:26} {statistics.median(ts):9.3f} {ratio:7.3f}")
print("load average after:", open("/proc/loadavg").read().split()[:3])
