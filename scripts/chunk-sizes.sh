#!/usr/bin/env bash
# Measures volume chunk sizes on the bench kit's vol.img → vol2.img (4 GiB ext4 images; vol2
# has 1.5% of its 4 KiB blocks changed) and prints the table of docs/benchmarks.md
# ("Volume chunk size"): for each size, a full backup of vol.img, then vol2.img three ways
# from hard-linked copies of that repository (packs are immutable, so the copies are
# independent): with the exact changed-block list and patches, with the list but whole
# chunks (--no-patches), and a full scan without a list.
#
#   scripts/chunk-sizes.sh [SIZES_KIB]      (default: "16 32 64 128 256 1024 4096")
#
# Needs a release build (cargo build --release -p cairn-cli, or CAIRN_BIN) and the data
# (../shared/bench/make_data.sh). Runs niced. Uploaded = bytes of packs written
# (`bytes_stored`); amplification = uploaded ÷ changed bytes; index = bytes of index files
# after the full backup, per TiB of unique (non-zero, deduplicated) data it added.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=$(cd ../shared/bench && pwd)
D=${CAIRN_BENCH_DIR:-$HOME/.cache/cairn-bench}/data
BIN=${CAIRN_BIN:-$PWD/target/release/cairn}
SIZES=${1:-"16 32 64 128 256 1024 4096"}
W=$(mktemp -d "${TMPDIR:-/tmp}/cairn-chunk-sizes.XXXXXX")
trap 'rm -rf "$W"' EXIT
export CAIRN_PASSWORD=chunk-size-bench
python3 scripts/vol2-changed-blocks.py "$KIT" "$D/vol.img" >"$W/delta.json"
CHANGED=$(python3 -c 'import json,sys; print(sum(b["size_bytes"] for b in json.load(open(sys.argv[1]))["block_metadata"]))' "$W/delta.json")
cairn() { nice -n 10 "$BIN" "$@"; }
field() { python3 -c 'import json,sys; s=json.loads(sys.stdin.read().strip().splitlines()[-1])["summary"]; print(s[sys.argv[1]])' "$1"; }
t() { local s e; s=$(date +%s.%N); "$@" >"$W/out.json"; e=$(date +%s.%N); echo "$e - $s" | bc; }

echo "changed bytes: $CHANGED"
printf '| chunk | full: stored | index / TiB unique | list+patches: uploaded (amp.) time | list, whole chunks: uploaded (amp.) | full scan: uploaded (amp.) time |\n'
printf '| --- | --- | --- | --- | --- | --- |\n'
for kib in $SIZES; do
  R=$W/r$kib
  cairn init --repo "$R" --volume-chunk-kib "$kib" --kdf-memory 64 --kdf-iterations 1 -q >/dev/null
  cairn backup --repo "$R" --json --no-progress --source-id vol --volume "$D/vol.img" >"$W/out.json"
  full_added=$(field bytes_added <"$W/out.json"); full_stored=$(field bytes_stored <"$W/out.json")
  idx=$(du -sb "$R/index" | cut -f1)
  cp -al "$R" "$R-whole"; cp -al "$R" "$R-scan"
  tp=$(t cairn backup --repo "$R" --json --no-progress --source-id vol --volume "$D/vol2.img" --changed-blocks "$W/delta.json")
  up=$(field bytes_stored <"$W/out.json")
  cairn backup --repo "$R-whole" --json --no-progress --source-id vol --volume "$D/vol2.img" --changed-blocks "$W/delta.json" --no-patches >"$W/out.json"
  uw=$(field bytes_stored <"$W/out.json")
  ts=$(t cairn backup --repo "$R-scan" --json --no-progress --source-id vol --volume "$D/vol2.img")
  us=$(field bytes_stored <"$W/out.json")
  python3 - "$kib" "$full_added" "$full_stored" "$idx" "$up" "$tp" "$uw" "$us" "$ts" "$CHANGED" <<'PY'
import sys
kib, added, stored, idx, up, tp, uw, us, ts, ch = sys.argv[1:]
added, stored, idx, up, uw, us, ch = map(int, (added, stored, idx, up, uw, us, ch))
mib = lambda b: "%.1f MiB" % (b / 2**20)
size = "%d KiB" % int(kib) if int(kib) < 1024 else "%d MiB" % (int(kib) // 1024)
print("| %s | %s | %.0f MiB | %s (%.2f×) %.2f s | %s (%.1f×) | %s (%.1f×) %.1f s |" % (
    size, mib(stored), idx * 2**40 / added / 2**20, mib(up), up / ch, float(tp),
    mib(uw), uw / ch, mib(us), us / ch, float(ts)))
PY
  rm -rf "$R" "$R-whole" "$R-scan"
done
