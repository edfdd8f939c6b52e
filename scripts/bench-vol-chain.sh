#!/usr/bin/env bash
# Restore after a chain of changed-block incrementals: the bench kit's vol.img backed up in
# full, then changed 10 times (each: 1% of its 4 KiB blocks rewritten at random, seeded) and
# backed up with each change's exact block list. The final image is also backed up in full
# into a second repository, to separate what the chain costs from what the changed content
# costs. Times restoring the first full, the last incremental and that full of the final
# image, interleaved, page cache dropped before each, RUNS times; prints the medians.
# Usage: scripts/bench-vol-chain.sh [RUNS]   (default 3; needs ../shared/bench/make_data.sh;
# CAIRN=path uses that binary instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CAIRN_BENCH_DIR:-$HOME/.cache/cairn-bench}
if [ -z "${CAIRN:-}" ]; then
  cargo build --release --locked -p cairn-cli
  CAIRN=$PWD/target/release/cairn
fi
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
$CAIRN init --repo "$W/repo-final" >/dev/null
final=$($CAIRN backup -q --repo "$W/repo-final" --source-id chain --volume "$W/vol.img")
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
time_restore() { # repository snapshot
  rm -f "$W/out.img"; drop
  local t0 t1; t0=$(date +%s.%N)
  $CAIRN restore --repo "$1" "$2" --target "$W/out.img" >/dev/null
  sync; t1=$(date +%s.%N); echo "$t1 - $t0" | bc
}
F=(); L=(); X=()
for r in $(seq 1 "${1:-3}"); do
  F+=("$(time_restore "$W/repo" "$first")"); X+=("$(time_restore "$W/repo-final" "$final")")
  L+=("$(time_restore "$W/repo" "$last")")
done
cmp -s "$W/out.img" "$W/vol.img" && echo "last restore: identical to the image" || { echo "last restore DIFFERS"; exit 1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "restore first full: ${F[*]} (median $(median "${F[@]}") s)"
echo "restore 10th incremental: ${L[*]} (median $(median "${L[@]}") s)"
echo "restore a full backup of the final image: ${X[*]} (median $(median "${X[@]}") s)"
echo "ratios: 10th incremental / first full $(echo "scale=3; $(median "${L[@]}") / $(median "${F[@]}")" | bc)," \
  "10th incremental / full of the same image $(echo "scale=3; $(median "${L[@]}") / $(median "${X[@]}")" | bc)"
du -sb "$W/repo" | awk '{print "repository bytes: " $1}'
du -sb "$W/repo-final" | awk '{print "repository of the final image alone: " $1}'
