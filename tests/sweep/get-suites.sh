#!/usr/bin/env bash
# Fetches the public test suites the sweep runs on (tests/sweep/main.rs) into DIR, each at the
# commit the accepted list was made against: DIR/<suite>/<path in its repository>/...
# Needs git and network access to GitHub; CI has neither, so the sweep is run by hand.
#   bash tests/sweep/get-suites.sh /tmp/suites
set -euo pipefail
dir="${1:?usage: get-suites.sh DIR}"
mkdir -p "$dir"
while read -r name repo commit path; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  work="$(mktemp -d)"
  git -C "$work" init -q
  git -C "$work" remote add origin "https://github.com/$repo.git"
  git -C "$work" fetch -q --depth 1 origin "$commit"
  mkdir -p "$dir/$name"
  if [ "$path" = "." ]; then
    git -C "$work" archive FETCH_HEAD | tar -x -C "$dir/$name"
  else
    git -C "$work" archive FETCH_HEAD "$path" | tar -x -C "$dir/$name"
  fi
  rm -rf "$work"
  echo "$name: $(find "$dir/$name" -type f | wc -l) files"
done <<'SUITES'
# name             repository                          commit                                    path
libvips            libvips/libvips                     29fd12021b279dee0d22223e11686f7d61dcd541  test/test-suite/images
image-rs           image-rs/image                      2c5368b8de2f76ae9d18bc0bcf2cd16c3164cefe  tests/images
sharp              lovell/sharp                        ea5bef24c187b2c7ee3fe3cad3b45c8cb67a46fd  test/fixtures
exif-orientation   recurser/exif-orientation-examples  219294e144531b0c01247913cb58b6f5531b5081  .
SUITES
