#!/usr/bin/env python3
"""What `--quality auto=SCORE` saves (issue #17, target 3): for each lossy format, the total bytes
of presize's auto outputs against the fixed quality that a user would need for the same
guarantee, i.e. the lowest quality whose *lowest* per-image score reaches SCORE.

Scores are SSIMULACRA2 (the PyPI `ssimulacra2` package) of each output against presize's own
lossless PNG of the same size (the resized pixels both were encoded from), so the numbers are
close to, not identical with, the Rust crate that `--quality auto` uses.

Usage:
  python3 benches/auto_saving.py --presize target/release/presize --images DIR \\
      [--width 640] [--score 70] [--formats jpeg,webp,avif] [--presize-args "--icc srgb"]
AVIF outputs are converted to sRGB (AVIF carries no profile here) while the PNG reference keeps
the source's profile, which this scorer ignores: give --presize-args "--icc srgb" so that both
hold sRGB pixels, or the wide-gamut photos score low whatever the quality.
Needs: pip install ssimulacra2 pillow.
"""
import argparse, os, shutil, subprocess, tempfile
from concurrent.futures import ProcessPoolExecutor

EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}


def score_one(pair):
    import ssimulacra2
    return ssimulacra2.compute_ssimulacra2(*pair)


def run(presize, images, out, width, args):
    args = args + EXTRA
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([presize, images, "-o", out, "-w", str(width), "-q", "--overwrite"] + args, check=True)


EXTRA = []


def measure(pool, out, ref, ext):
    """Total bytes and per-file scores of the `ext` outputs in `out`."""
    files = sorted(f for f in os.listdir(out) if f.endswith("." + ext))
    pairs = [(os.path.join(ref, os.path.splitext(f)[0] + ".png"), os.path.join(out, f)) for f in files]
    total = sum(os.path.getsize(os.path.join(out, f)) for f in files)
    return total, list(pool.map(score_one, pairs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presize", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--score", type=float, default=70.0)
    ap.add_argument("--formats", default="jpeg,webp,avif")
    ap.add_argument("--presize-args", default="")
    a = ap.parse_args()
    EXTRA.extend(a.presize_args.split())
    tmp = tempfile.mkdtemp(prefix="auto-saving-")
    ref, out = os.path.join(tmp, "ref"), os.path.join(tmp, "out")
    run(a.presize, a.images, ref, a.width, ["-f", "png"])
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        for fmt in a.formats.split(","):
            ext = EXT[fmt]
            run(a.presize, a.images, out, a.width, ["-f", fmt, "-Q", f"auto={a.score:g}"])
            auto_total, auto_scores = measure(pool, out, ref, ext)
            # The lowest fixed quality whose worst image still reaches the score (bisection).
            lo, hi, best = 1, 100, None
            while lo <= hi:
                q = (lo + hi) // 2
                run(a.presize, a.images, out, a.width, ["-f", fmt, "-Q", f"{fmt}={q}"])
                total, scores = measure(pool, out, ref, ext)
                if min(scores) >= a.score:
                    best, hi = (q, total, min(scores)), q - 1
                else:
                    lo = q + 1
            print(f"{fmt:<5} auto={a.score:g}: {auto_total / 1024:8.0f} KB, scores "
                  f"{min(auto_scores):.1f}-{max(auto_scores):.1f} (median {sorted(auto_scores)[len(auto_scores) // 2]:.1f})")
            if best:
                q, total, worst = best
                print(f"{fmt:<5} fixed q{q} (lowest with every score >= {a.score:g}, worst {worst:.1f}): "
                      f"{total / 1024:8.0f} KB -> auto saves {100 * (1 - auto_total / total):.0f} %", flush=True)
            else:
                print(f"{fmt:<5} no fixed quality reaches {a.score:g} on every image", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
