#!/usr/bin/env python3
"""Power-cut simulation for presize on a real file system (issue #18). Run by hand, as root.

The kernel of the development machine has no device-mapper (`dmsetup targets`:
"/dev/mapper/control: open failed: No such device"; no /lib/modules, no modprobe), so
dm-flakey and dm-log-writes cannot replay a write log. The cut is made the way xfstests makes
it without them: XFS on a loop device, shut down with XFS_IOC_GOINGDOWN and no log flush
(`xfs_io -x -c shutdown`). From that instant nothing more reaches the device; unmount and
mount then replay the log, as a reboot would. Before some cuts an unrelated `fsync` commits
the whole XFS log (every rename so far) without writing back other files' data, as the other
programs of a busy machine do all the time: that is when an unsynced rename hurts.

Outputs are deterministic, so after each cut every file is compared byte for byte with a run
made on an undisturbed disk. Scenarios, each cut at a random point of a run (and once after it):

  in-place           presize --in-place: each original must be the original or its new version
  lazy overwrite     the write the old --in-place made (rename over a file, no fsync),
                     reproduced by rebuilding complete outputs with --overwrite --no-sync
  manifest build     presize --manifest: no output the manifest records may be damaged at its
                     recorded size, and a rerun must repair everything
  manifest --no-sync the same without syncing (scratch builds)

usage: sudo tests/powercut/powercut.py PRESIZE [ROUNDS] [IMAGES]
  PRESIZE  a release binary (target/release/presize)
  ROUNDS   random cut points per scenario (default 10)
  IMAGES   a folder of JPEGs (default testdata/photos; the corpus photos were used for the
           figures in docs/RELIABILITY.md)
Needs: root, xfsprogs (mkfs.xfs, xfs_io), a free loop device, 1 GiB in /tmp.
"""
import hashlib, json, os, random, shutil, subprocess, sys, tempfile, time

exe = os.path.abspath(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
here = os.path.dirname(os.path.abspath(__file__))
photos = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else os.path.join(here, "../../testdata/photos")
work = tempfile.mkdtemp(prefix="presize-powercut-")
mnt, scratch = f"{work}/mnt", f"{work}/ref"
args = ["-w", "400", "-j", "2", "-q", "--progress", "never"]
names = sorted(n for n in os.listdir(photos) if n.lower().endswith((".jpg", ".jpeg")))


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def copy_images(dst, origin=None):
    os.makedirs(dst)
    for n in names:
        shutil.copy(f"{origin or photos}/{n}", dst)


image = f"{work}/xfs.img"
with open(image, "wb") as f:
    f.truncate(1 << 30)
loop = sh("losetup", "-f", "--show", image).stdout.strip()
os.makedirs(mnt)


def fresh_fs():
    sh("umount", mnt, check=False)
    sh("mkfs.xfs", "-q", "-f", loop)
    sh("mount", loop, mnt)


def cut(force_log, process):
    """The power cut: the device stops, and so does presize (it must not go on writing to the
    file system mounted again); then the reboot's log recovery."""
    if force_log:
        sh("xfs_io", "-f", "-c", "pwrite -q 0 4k", "-c", "fsync", f"{mnt}/unrelated")
    sh("xfs_io", "-x", "-c", "shutdown", mnt)
    process.kill()
    process.wait()
    sh("umount", mnt)
    sh("mount", loop, mnt)


LAST_RUN = [0.0]


def run_and_cut(cmd, delay, force_log):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if delay is None:
        p.wait()
        LAST_RUN[0] = time.perf_counter() - t
    else:
        time.sleep(delay)
    cut(force_log, p)


def in_place(delay, force_log):
    fresh_fs()
    copy_images(f"{mnt}/in", src)
    sh("sync")
    run_and_cut([exe, f"{mnt}/in", "--in-place", *args], delay, force_log)
    state = {"original": 0, "new": 0, "lost": []}
    for n in names:
        p = f"{mnt}/in/{n}"
        h = sha(p) if os.path.exists(p) else None
        if h == original[n]:
            state["original"] += 1
        elif h == replaced[n]:
            state["new"] += 1
        else:
            state["lost"].append(f"{n} ({os.path.getsize(p) if h else 'missing'} bytes)")
    return state


def overwrite_lazily(delay, force_log):
    fresh_fs()
    shutil.copytree(f"{scratch}/build", f"{mnt}/out")
    sh("sync")
    run_and_cut([exe, src, "-o", f"{mnt}/out", "--overwrite", "--no-sync", *args], delay,
                force_log)
    lost = [f"{n} ({os.path.getsize(f'{mnt}/out/{n}')} bytes)" for n in names
            if sha(f"{mnt}/out/{n}") != built[n]]
    return {"intact": len(names) - len(lost), "lost": lost}


def manifest_build(extra, delay, force_log):
    fresh_fs()
    m = f"{mnt}/m.json"
    run_and_cut([exe, src, "-o", f"{mnt}/out", "--manifest", m, *args, *extra], delay, force_log)
    bad_fresh, listed, note = [], 0, "none"
    try:
        manifest = json.load(open(m))
        note = "read"
    except FileNotFoundError:
        manifest = None
    except ValueError as e:
        manifest, note = None, f"unreadable ({e})"
    for s in (manifest or {}).get("sources", []):
        for o in s["outputs"]:
            listed += 1
            p = f"{mnt}/out/{o['path']}"
            if (os.path.exists(p) and os.path.getsize(p) == o["bytes"]
                    and sha(p) != built[os.path.basename(p)]):
                bad_fresh.append(o["path"])
    rerun = subprocess.run([exe, src, "-o", f"{mnt}/out", "--manifest", m, *args, *extra],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wrong = [n for n in names
             if not os.path.exists(f"{mnt}/out/{n}") or sha(f"{mnt}/out/{n}") != built[n]]
    return {"manifest": note, "records": listed, "fresh_but_damaged": bad_fresh,
            "rerun_exit": rerun.returncode, "wrong_after_rerun": wrong}


try:
    # The JPEGs alone, and the references, on the undisturbed disk.
    src = f"{work}/src"
    copy_images(src)
    copy_images(f"{scratch}/inplace")
    sh(exe, f"{scratch}/inplace", "--in-place", *args)
    original = {n: sha(f"{src}/{n}") for n in names}
    replaced = {n: sha(f"{scratch}/inplace/{n}") for n in names}
    sh(exe, src, "-o", f"{scratch}/build", *args)
    built = {n: sha(f"{scratch}/build/{n}") for n in names}

    scenarios = {
        "in-place": lambda d, f: in_place(d, f),
        "lazy overwrite (the old --in-place write)": lambda d, f: overwrite_lazily(d, f),
        "manifest build": lambda d, f: manifest_build([], d, f),
        "manifest build --no-sync": lambda d, f: manifest_build(["--no-sync"], d, f),
    }
    span = {}
    for name, run in scenarios.items():
        run(None, False)
        span[name] = LAST_RUN[0]
    print("run times (s):", {k: round(v, 2) for k, v in span.items()}, flush=True)
    random.seed(18)
    for name, run in scenarios.items():
        print(f"{name}, cut after the run (log forced):", json.dumps(run(None, True)), flush=True)
    for i in range(rounds):
        x, force = random.uniform(0.02, 1.0), random.random() < 0.5
        for name, run in scenarios.items():
            state = run(x * span[name], force)
            print(f"{name}, cut at {x:.2f} of the run (log forced: {force}):", json.dumps(state),
                  flush=True)
finally:
    sh("umount", mnt, check=False)
    sh("losetup", "-d", loop, check=False)
    shutil.rmtree(work, ignore_errors=True)
