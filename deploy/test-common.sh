# shellcheck shell=bash disable=SC2154
# Shared by the deploy/test-*.sh scripts (sourced, not run): the source
# tree, the plain run the shards are compared with, and the checks on a finished build.
# Expects $name (for messages), $repo, $work (a scratch folder) and $start (date +%s%N).
# Both tests use the options of deploy/slurm-array.sh; should a test's options drift from the
# plain run's, the merged manifest's options hash differs and merge_and_compare fails.

say() {
  local ms=$((($(date +%s%N) - start) / 1000000))
  printf '%s [%3d.%ds]: %s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$*"
}
fail() {
  echo "$name: FAIL: $*" >&2
  exit 1
}

# The sources: three small corpus images (a CMYK JPEG with a profile, a tiny JPEG, an RGBA PNG)
# in 8 folders, 24 sources. Small, so that a debug build takes about a second per source.
make_sources() {
  local d
  for d in 1 2 3 4 5 6 7 8; do
    mkdir -p "$1/shoot-$d"
    cp "$repo"/testdata/photos/{fallen_leaf_tiny_400x250.jpg,cmyk_ycck_500x333_swop_icc.jpg,transparency_rgba8.png} \
      "$1/shoot-$d/"
  done
}

# One plain run over $1 into $work/single/img, manifest $work/single/img.json.
single_run() {
  presize "$1" --out-dir "$work/single/img" --width 320,640,1280 --format avif,webp,jpeg \
    --manifest "$work/single/img.json" --progress never >"$work/single.log" 2>&1 ||
    fail "the plain run failed: $(cat "$work/single.log")"
  say "plain run: $(find "$1" -type f | wc -l) sources, $(find "$work/single/img" -type f | wc -l) outputs"
}

# Every file under $1, relative, sorted (hidden ones too: a leftover temp file shows up here).
files() { (cd "$1" && find . -type f | sort); }

# The tree $1 must hold exactly the single run's files, byte for byte ($2 names the check).
same_bytes() {
  local f
  diff <(files "$1") <(files "$work/single/img") >"$work/diff" ||
    fail "$2: the file lists differ (< shards, > single run): $(head -n 10 "$work/diff")"
  while read -r f; do
    cmp -s "$1/$f" "$work/single/img/$f" || fail "$2: $f differs from the single run"
  done < <(files "$1")
  say "$2: $(files "$1" | wc -l) files, each byte-identical to the single run (cmp)"
}

# The README's merge step, run in $1 on manifests/m-*.json; the result must equal the single
# run's manifest byte for byte (nothing in a presize manifest depends on timing or on the
# machine, so nothing is normalised).
merge_and_compare() {
  (cd "$1" && presize manifest merge manifests/m-*.json -o site/img.json >/dev/null) ||
    fail "$2: presize manifest merge failed"
  cmp "$1/site/img.json" "$work/single/img.json" ||
    fail "$2: the merged manifest differs from the single run's"
  say "$2: merged manifest equals the single run's (cmp)"
}

# No source may be recorded by two parts (the manifests $@).
disjoint_parts() {
  local dups
  dups=$(jq -r '.sources[].path' "$@" | sort | uniq -d)
  [ -z "$dups" ] || fail "sources recorded by two shards: $dups"
}

# Path, inode and mtime (ns) of every file under $1: a rewrite, even of the same bytes, changes
# the inode, since presize writes a temp file and renames it.
stamp() { (cd "$1" && find . -type f -printf '%P %i %T@\n' | sort); }

# The lines of stamp $2 (an earlier `stamp` of the same tree) that changed in `stamp $1`,
# except for the paths listed in the file $3.
rewritten() {
  comm -23 <(stamp "$1") "$2" | awk 'NR == FNR { skip[$1] = 1; next } !($1 in skip)' "$3" -
}

# How many of the paths listed in file $2 exist under $1.
present() {
  local f n=0
  while read -r f; do
    if [ -e "$1/$f" ]; then n=$((n + 1)); fi
  done <"$2"
  echo $n
}

# Temporary files anywhere under $1.
no_temp_files() {
  local temps
  temps=$(find "$1" -name '.presize-*')
  [ -z "$temps" ] || fail "$2: temporary files left: $temps"
}

# What a shard stopped mid-run left in the tree $1: every output it had begun ($2: the list of
# the shard's outputs) is complete, and its manifest $3, if it wrote one (presize stopped by a
# signal records the images it finished), lists only outputs that are there, complete. Prints
# what the manifest records.
stopped_shard_ok() {
  local f
  no_temp_files "$1/../.." "stopped shard"
  while read -r f; do
    [ -e "$1/$f" ] || continue
    cmp -s "$1/$f" "$work/single/img/$f" || fail "the stopped shard left $f incomplete or wrong"
  done <"$2"
  if [ -e "$3" ]; then
    while read -r f; do
      cmp -s "$1/$f" "$work/single/img/$f" ||
        fail "the stopped shard's manifest lists $f, which is missing or differs"
    done < <(jq -r '.sources[].outputs[].path' "$3")
    echo "$(jq '.sources | length' "$3") finished sources"
  else
    echo "nothing (no manifest)"
  fi
}
