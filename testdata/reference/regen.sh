#!/usr/bin/env bash
# Regenerates the ImageMagick-made reference images that the default tests compare presize's
# output with, so that `cargo test` itself never runs ImageMagick (issue #14). Run it after
# changing a source photo or presize's embedded sRGB profile, then look at `git diff --stat`
# and commit the files with the new ImageMagick version written in testdata/README.md.
#
# Committed files were made with: ImageMagick 6.9.11-60 Q16 x86_64 (2021-01-25), Debian 12
# package imagemagick-6.q16 8:6.9.11.60+dfsg-1.6+deb12u15, lcms2 2.14; Ghostscript's sRGB
# profile from Debian 12 libgs-common 10.0.0~dfsg-11+deb12u9. Another version may differ by a
# code value here and there; the tests compare with a PSNR bound, not byte for byte.
#
# Needs: apt-get install imagemagick libimage-exiftool-perl (and cargo, to build presize once).
# Usage: testdata/reference/regen.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."   # testdata/

# The real ImageMagick: a program merely called `convert` may be something else, so each
# candidate must say it is ImageMagick.
convert=
for candidate in magick convert-im6.q16 convert; do
  path=$(command -v "$candidate" || true)
  if [ -n "$path" ] && "$path" -version 2>/dev/null | head -n1 | grep -q ImageMagick; then
    convert=$path
    break
  fi
done
if [ -z "$convert" ]; then
  echo "regen.sh: ImageMagick not found (apt-get install imagemagick)" >&2
  exit 1
fi
command -v exiftool >/dev/null || { echo "regen.sh: exiftool not found (apt-get install libimage-exiftool-perl)" >&2; exit 1; }
echo "regen.sh: $("$convert" -version | head -n1)"

# No time stamps in the PNGs: the same input gives the same bytes on every run.
im() { "$convert" "$@"; }
png=(-define png:exclude-chunk=date,time)

# presize's embedded sRGB profile, taken from a presize output (548 bytes): the target of the
# `--icc srgb` references, and checked against the code by tests/colour.rs so that a changed
# profile asks for new references.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet --manifest-path ../Cargo.toml -- photos/rocket_640x427_adobergb_icc.jpg \
  -o "$tmp" -w 16 -f png --icc srgb --progress never -q
exiftool -b -ICC_Profile "$tmp/rocket_640x427_adobergb_icc.png" > reference/presize_srgb.icc
srgb=reference/presize_srgb.icc

# reference/: Lanczos downscales (quality tests in tests/cli.rs), whole-photo colour
# conversions and a premultiplied-alpha resize (tests/colour.rs).
for src in photos/rocket_640x427_adobergb_icc photos/dune_1680x1050_exif; do
  im "$src.jpg" -auto-orient -filter Lanczos -resize 320x "${png[@]}" \
    "reference/$(basename "$src")_320w_lanczos.png"
done
im orientation/Landscape_1.jpg -auto-orient -filter Lanczos -resize 200x "${png[@]}" \
  reference/landscape_200w_lanczos.png
im orientation/Portrait_1.jpg -auto-orient -filter Lanczos -resize 200x "${png[@]}" \
  reference/portrait_200w_lanczos.png
# -intent must come before -profile for ImageMagick to use it; relative is presize's intent.
im photos/rocket_640x427_adobergb_icc.jpg -intent relative -profile "$srgb" -strip "${png[@]}" \
  reference/rocket_640x427_srgb_relative.png
im photos/cmyk_ycck_500x333_swop_icc.jpg -intent relative -profile "$srgb" -strip "${png[@]}" \
  reference/cmyk_ycck_500x333_srgb_relative.png
im photos/transparency_rgba8.png -filter Lanczos -resize 150x150 "${png[@]}" \
  reference/transparency_150w_lanczos.png

# color/: 64x64 crops for the unit tests in src/pipeline/color.rs (Ghostscript's sRGB profile).
gs_srgb=/usr/share/color/icc/ghostscript/srgb.icc
im photos/rocket_640x427_adobergb_icc.jpg -crop 64x64+340+340 +repage -strip "${png[@]}" \
  color/rocket_crop64_adobergb.png
im photos/rocket_640x427_adobergb_icc.jpg -intent relative -profile "$gs_srgb" \
  -crop 64x64+340+340 +repage -strip "${png[@]}" color/rocket_crop64_srgb_im.png
im photos/cmyk_ycck_500x333_swop_icc.jpg -intent relative -profile "$gs_srgb" \
  -crop 64x64+300+180 +repage -strip "${png[@]}" color/cmyk_crop64_srgb_im.png

echo "regen.sh: done; see git status testdata/"
