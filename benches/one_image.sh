#!/usr/bin/env bash
# One image, many cores: times presize at -j 1 and -j 2 (interleaved, 5 rounds, medians) on
# folders that each hold one large image made from the shared corpus. Reproduces the table in
# the README's "One image, many cores". Needs ImageMagick (convert) and jpegtran.
#   benches/one_image.sh [path/to/presize] [work dir]
set -euo pipefail
P=$(realpath "${1:-target/release/presize}")
W=${2:-/tmp/presize-one-image}
SRC=$(realpath "$(dirname "$0")/../../shared/corpus/photos/kleiber_bird_6028x3391.jpg")
mkdir -p "$W"/{jpg,dri,prog,png}
cd "$W"
# 82 MP (12056x6782) baseline JPEG; the same with a restart marker every MCU row (lossless);
# a progressive copy; a 46 MP (9042x5087) PNG.
[ -f jpg/huge.jpg ] || convert "$SRC" -resize 200% -quality 90 jpg/huge.jpg
[ -f dri/huge_dri.jpg ] || jpegtran -copy all -restart 1 jpg/huge.jpg > dri/huge_dri.jpg
[ -f prog/huge_prog.jpg ] || convert jpg/huge.jpg -interlace JPEG -quality 90 prog/huge_prog.jpg
[ -f png/huge.png ] || convert "$SRC" -resize 150% png/huge.png
cases=("jpg|-w 800" "dri|-w 800" "dri|-w 6000" "prog|-w 800" "png|-w 800"
       "jpg|-w 320,640,1280,1920 -f jpeg,webp")
: > times.txt
for round in 1 2 3 4 5; do
  for c in "${cases[@]}"; do
    dir=${c%%|*}; args=${c#*|}
    for j in 1 2; do
      rm -rf out
      start=$(date +%s.%N)
      # shellcheck disable=SC2086
      "$P" "$dir" -o out $args -j "$j" -q
      end=$(date +%s.%N)
      echo "$c|$j|$(echo "$end - $start" | bc)" >> times.txt
    done
  done
done
python3 - <<'PY'
import collections, statistics
t = collections.defaultdict(list)
for line in open("times.txt"):
    case, j, s = line.rsplit("|", 2)
    t[(case, j)].append(float(s))
for case in dict.fromkeys(k[0] for k in t):
    one, two = statistics.median(t[(case, "1")]), statistics.median(t[(case, "2")])
    print(f"{case:45} -j1 {one:.3f} s  -j2 {two:.3f} s  speed-up {one / two:.2f}x")
PY
