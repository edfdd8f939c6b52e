#!/usr/bin/env bash
# Volume benchmarks only (vol_full, vol_incr, vol_restore), same run, interleaved: Cairn with a
# full scan (`cairn`), Cairn given vol2's exact changed-block list (`cairn-cbt`), and peers.
# Usage: scripts/bench-vol.sh [RUNS] [CFGS]   (default: 3 "bupstash restic cairn cairn-cbt")
# Needs the data (../shared/bench/make_data.sh) and peers (../shared/bench/install_peers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=$(cd ../shared/bench && pwd)
export CAIRN_BENCH_DIR=${CAIRN_BENCH_DIR:-$HOME/.cache/cairn-bench}
cargo build --release --locked -p cairn-cli
# A fixed copy: rebuilding during a run must not change the binary under test.
mkdir -p "$CAIRN_BENCH_DIR/bin" && cp target/release/cairn "$CAIRN_BENCH_DIR/bin/cairn"
export CAIRN_BIN=$CAIRN_BENCH_DIR/bin/cairn
export PBRES=${PBRES:-$CAIRN_BENCH_DIR/results-vol-$(date +%Y%m%d-%H%M).tsv}
python3 scripts/vol2-changed-blocks.py "$KIT" "$CAIRN_BENCH_DIR/data/vol.img" >"$CAIRN_BENCH_DIR/vol2-delta.json"
python3 scripts/bench-kit-cbt.py "$KIT" "$CAIRN_BENCH_DIR/kit-cbt" "$CAIRN_BENCH_DIR/vol2-delta.json"
for r in $(seq 1 "${1:-3}"); do
  for c in ${2:-bupstash restic cairn cairn-cbt}; do
    "$CAIRN_BENCH_DIR/kit-cbt/bench.sh" "$c" "$r" "vol_full vol_incr vol_restore"
    rm -rf "$CAIRN_BENCH_DIR/repos/$c-$r-vol"
  done
done
REP=$(mktemp -d); cp "$PBRES" "$REP/results.tsv"
CAIRN_BENCH_DIR=$REP python3 "$KIT/report.py"
echo "results: $PBRES"
