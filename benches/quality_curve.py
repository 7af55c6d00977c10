#!/usr/bin/env python3
"""Bytes against SSIMULACRA2 per format: presize's quality swept, each web peer's default point
marked (issue #17, target 1). Writes a PNG (default docs/quality-curves.png) and prints a table.

Measured exactly as ../shared/bench/web.py measures the web build, by importing its reference
maker: bytes are the total over every width (default 320,640,1280) of the folder, the score is
the median SSIMULACRA2 of the --score-width outputs against a colour-managed Lanczos reference
(Pillow; orientation applied, ICC converted to sRGB). The peers' points come from a saved
`web.py --score --json` run (its last line), so sharp and eleventy-img are not re-run here.

Usage:
  python3 ../shared/bench/web.py --presize target/release/presize --images DIR --score --json > web.txt
  python3 benches/quality_curve.py --presize target/release/presize --images DIR --peers web.txt \\
      [--formats avif,webp,jpeg] [--qualities avif=30:70:5,webp=60:90:5,jpeg=60:90:5] \\
      [--series 'label:extra presize args' ...] [--out docs/quality-curves.png] [--json FILE]
A series is one curve per format (default: presize's defaults, label "presize"); several
series compare encoder levers (e.g. --series 'speed 9:' --series 'speed 8:--effort avif=2').
Needs: pip install ssimulacra2 pillow matplotlib.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
WEB = os.path.join(HERE, "..", "..", "shared", "bench")
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp"}
EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}


def web_module(path):
    sys.path.insert(0, path)
    import web  # noqa: E402 - the shared bench's reference maker, so both scripts score alike
    return web


def score_one(args):
    ref, out = args
    import ssimulacra2
    return ssimulacra2.compute_ssimulacra2(ref, out)


def parse_range(spec):
    """'avif=30:70:5,webp=...' -> {fmt: [qualities]} (inclusive ranges, or q1/q2/q3 lists)."""
    out = {}
    for part in spec.split(","):
        fmt, r = part.split("=")
        if "/" in r:
            out[fmt] = [int(q) for q in r.split("/")]
        else:
            lo, hi, step = (int(x) for x in r.split(":"))
            out[fmt] = list(range(lo, hi + 1, step))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presize", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--peers", help="a saved `web.py --score --json` output")
    ap.add_argument("--web", default=WEB, help="folder of web.py (default ../shared/bench)")
    ap.add_argument("--widths", default="320,640,1280")
    ap.add_argument("--score-width", type=int, default=640)
    ap.add_argument("--formats", default="avif,webp,jpeg")
    ap.add_argument("--qualities", default="avif=30:70:5,webp=60:90:5,jpeg=60:90:5")
    ap.add_argument("--series", action="append", default=[])
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "quality-curves.png"))
    ap.add_argument("--json")
    a = ap.parse_args()

    web = web_module(a.web)
    images = os.path.abspath(a.images)
    files = sorted(f for f in os.listdir(images) if os.path.splitext(f)[1].lower() in IMAGE_EXT)
    fmts = a.formats.split(",")
    sweep = parse_range(a.qualities)
    series = [s.split(":", 1) for s in a.series] or [["presize", ""]]
    tmp = tempfile.mkdtemp(prefix="quality-curve-")
    ref_dir = os.path.join(tmp, "ref")
    os.makedirs(ref_dir)
    for f in files:
        web.make_reference(os.path.join(images, f), os.path.join(ref_dir, os.path.splitext(f)[0] + ".png"),
                           a.score_width)

    points = {}  # (series, fmt) -> [(quality, bytes, score)]
    with ProcessPoolExecutor(a.jobs) as pool:
        for label, extra in series:
            for fmt in fmts:
                for q in sweep[fmt]:
                    out = os.path.join(tmp, "out")
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = [a.presize, images, "-o", out, "-w", a.widths, "-f", fmt, "-Q", f"{fmt}={q}",
                           "-j", str(a.jobs), "-q", "--overwrite"] + extra.split()
                    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                    total = web.bytes_by_format(out).get(fmt, 0)
                    pairs = []
                    for f in files:
                        stem = os.path.splitext(f)[0]
                        o = os.path.join(out, f"{stem}-{a.score_width}w.{EXT[fmt]}")
                        if os.path.exists(o):
                            pairs.append((os.path.join(ref_dir, stem + ".png"), o))
                    score = statistics.median(pool.map(score_one, pairs))
                    points.setdefault((label, fmt), []).append((q, total, score))
                    print(f"{label:<14} {fmt:<5} q{q:<3} {total / 1024:>8.0f} KB  s2 {score:5.1f}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)

    peers = {}
    if a.peers:
        with open(a.peers) as fh:
            rows = json.loads([l for l in fh if l.startswith("{")][-1])["rows"]
        for r in rows:
            if r["tool"] != "presize" and r.get("ssimulacra2"):
                for fmt in fmts:
                    if r["ssimulacra2"].get(fmt) is not None:
                        peers[(r["tool"], fmt)] = (r["bytes"].get(fmt, 0), r["ssimulacra2"][fmt])
    for (tool, fmt), (b, s) in sorted(peers.items()):
        # The curve passes below a peer point when, at the peer's score, it needs fewer bytes:
        # linear interpolation between the two swept qualities that bracket the score.
        for label, _ in series:
            pts = sorted(points[(label, fmt)], key=lambda p: p[2])
            at = None
            for (q0, b0, s0), (q1, b1, s1) in zip(pts, pts[1:]):
                if s0 <= s <= s1 and s1 > s0:
                    at = b0 + (b1 - b0) * (s - s0) / (s1 - s0)
            verdict = "n/a (score outside the sweep)" if at is None else (
                f"{at / 1024:.0f} KB at s2 {s:.1f}: {'below' if at < b else 'ABOVE'} ({at / b:.2f}x)")
            print(f"{tool:<12} {fmt:<5} {b / 1024:>6.0f} KB s2 {s:5.1f} | {label}: {verdict}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(fmts), figsize=(5 * len(fmts), 4.2))
    axes = axes if len(fmts) > 1 else [axes]
    marks = {"sharp": "s", "eleventy": "^"}
    for ax, fmt in zip(axes, fmts):
        for label, _ in series:
            pts = points[(label, fmt)]
            ax.plot([p[2] for p in pts], [p[1] / 1024 for p in pts], "o-", ms=3, label=label)
            for q, b, s in pts[:: max(1, len(pts) // 4)]:
                ax.annotate(f"q{q}", (s, b / 1024), fontsize=7, textcoords="offset points", xytext=(3, -9))
        for (tool, f), (b, s) in peers.items():
            if f == fmt:
                ax.plot([s], [b / 1024], marks.get(tool, "x"), ms=8, label=f"{tool} default")
        ax.set_title(fmt.upper())
        ax.set_xlabel(f"median SSIMULACRA2 at {a.score_width} px (higher is better)")
        ax.set_ylabel(f"total KB, widths {a.widths}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{len(files)} photos from {os.path.basename(os.path.normpath(images))}: bytes vs score")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"points": {f"{k[0]}|{k[1]}": v for k, v in points.items()},
                       "peers": {f"{k[0]}|{k[1]}": v for k, v in peers.items()}}, fh, indent=1)


if __name__ == "__main__":
    main()
