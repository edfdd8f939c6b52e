#!/usr/bin/env bash
# Restore after a chain of changed-block incrementals: the bench kit's vol.img backed up in
# full, then changed 10 times (each: 1% of its 4 KiB blocks rewritten at random, seeded) and
# backed up with each change's exact block list. Times restoring the first full and the last
# incremental, interleaved, page cache dropped before each, RUNS times; prints the medians.
# Usage: scripts/bench-vol-chain.sh [RUNS]   (default 3; needs ../shared/bench/make_data.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CAIRN_BENCH_DIR:-$HOME/.cache/cairn-bench}
cargo build --release --locked -p cairn-cli
CAIRN=$PWD/target/release/cairn
W=$B/chain; rm -rf "$W"; mkdir -p "$W"
export CAIRN_PASSWORD=bench-passphrase-1
cp --sparse=always "$B/data/vol.img" "$W/vol.img"
$CAIRN init --repo "$W/repo" >/dev/null
first=$($CAIRN backup -q --repo "$W/repo" --source-id chain --volume "$W/vol.img")
for i in $(seq 1 10); do
  python3 - "$W/vol.img" "$i" >"$W/delta-$i.json" <<'EOF'
import json, os, random, sys
path, seed = sys.argv[1], int(sys.argv[2])
size = os.path.getsize(path)
rng = random.Random(1000 + seed)
blocks = sorted(rng.sample(range(size // 4096), size // 4096 // 100))
with open(path, "r+b") as f:
    for b in blocks:
        f.seek(b * 4096)
        f.write(rng.randbytes(4096))
ranges = [{"byte_offset": b * 4096, "size_bytes": 4096} for b in blocks]
json.dump({"block_metadata_type": "FIXED_LENGTH", "volume_capacity_bytes": size,
           "block_metadata": ranges}, sys.stdout)
EOF
  last=$($CAIRN backup -q --repo "$W/repo" --source-id chain --volume "$W/vol.img" --changed-blocks "$W/delta-$i.json")
done
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
time_restore() { # snapshot
  rm -f "$W/out.img"; drop
  local t0 t1; t0=$(date +%s.%N)
  $CAIRN restore --repo "$W/repo" "$1" --target "$W/out.img" >/dev/null
  sync; t1=$(date +%s.%N); echo "$t1 - $t0" | bc
}
F=(); L=()
for r in $(seq 1 "${1:-3}"); do
  F+=("$(time_restore "$first")"); L+=("$(time_restore "$last")")
done
cmp -s "$W/out.img" "$W/vol.img" && echo "last restore: identical to the image" || { echo "last restore DIFFERS"; exit 1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "restore first full: ${F[*]} (median $(median "${F[@]}") s)"
echo "restore 10th incremental: ${L[*]} (median $(median "${L[@]}") s)"
du -sb "$W/repo" | awk '{print "repository bytes: " $1}'
