#!/usr/bin/env bash
# Benchmarks Cairn against the peer tools with the shared kit (../shared/bench), same run,
# interleaved. Usage: scripts/bench.sh [RUNS] [CFGS]   (default: 3 "cairn restic borg-lz4 rustic bupstash")
# CFGS may also name `cairn-cbt` (volume incremental with the exact changed-block list).
# Needs the data (../shared/bench/make_data.sh) and peers (../shared/bench/install_peers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=$(cd ../shared/bench && pwd)
export CAIRN_BENCH_DIR=${CAIRN_BENCH_DIR:-$HOME/.cache/cairn-bench}
cargo build --release --locked -p cairn-cli
# A fixed copy: rebuilding during a run must not change the binary under test.
mkdir -p "$CAIRN_BENCH_DIR/bin" && cp target/release/cairn "$CAIRN_BENCH_DIR/bin/cairn"
export CAIRN_BIN=$CAIRN_BENCH_DIR/bin/cairn
export PBRES=${PBRES:-$CAIRN_BENCH_DIR/results-$(date +%Y%m%d-%H%M).tsv}
# `cairn-cbt` (in CFGS): Cairn's volume incremental given vol2's exact changed-block list,
# run from a copy of the kit that knows that config (scripts/bench-kit-cbt.py).
case " ${2:-} " in *" cairn-cbt "*)
  python3 scripts/vol2-changed-blocks.py "$KIT" "$CAIRN_BENCH_DIR/data/vol.img" >"$CAIRN_BENCH_DIR/vol2-delta.json"
  python3 scripts/bench-kit-cbt.py "$KIT" "$CAIRN_BENCH_DIR/kit-cbt" "$CAIRN_BENCH_DIR/vol2-delta.json"
  KIT=$CAIRN_BENCH_DIR/kit-cbt ;;
esac
RUNS=${1:-3} CFGS=${2:-"cairn restic borg-lz4 rustic bupstash"} "$KIT/run_all.sh"
# report.py reads results.tsv (and limits.json, if measured) from its CAIRN_BENCH_DIR.
REP=$(mktemp -d); cp "$PBRES" "$REP/results.tsv"
[ -f "$CAIRN_BENCH_DIR/limits.json" ] && cp "$CAIRN_BENCH_DIR/limits.json" "$REP/"
CAIRN_BENCH_DIR=$REP python3 "$KIT/report.py"
