#!/usr/bin/env bash
# Backup and restore to an S3 server on loopback: s3s-fs on 127.0.0.1 with a fresh data
# directory, started and stopped here; Cairn, restic and rustic against the same server, same
# run, interleaved (run 1 of every tool, then run 2 …). The kit's steps and peer commands
# (../shared/bench/bench.sh), only the repositories moved to S3 (scripts/bench-s3.py kit):
# page cache dropped and inputs re-read before each step, restores verified with cmp / diff -r.
#
#   scripts/bench-s3.sh [RUNS] [CFGS] [OPS]
#     defaults: 3 "restic rustic cairn" "vol_full vol_incr vol_restore tree_full tree_incr tree_restore"
#
# Cairn is $CAIRN_BIN if set, else a fixed copy of a fresh release build. s3s-fs is the one
# scripts/ci.d/20-storage.sh installs ($S3S_FS, default ~/.cache/cairn-ci/s3s-fs/bin/s3s-fs).
# Rows go to $PBRES (default $CAIRN_BENCH_DIR/results-s3-DATE.tsv, the kit's format); each
# repository is deleted after its run; the medians and ratios are printed at the end. Set
# BENCH_S3_KEEP=1 to keep the logs and the server's directory (deleted by default).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KIT=$(cd ../shared/bench && pwd)
export CAIRN_BENCH_DIR=${CAIRN_BENCH_DIR:-$HOME/.cache/cairn-bench}
RUNS=${1:-3}
CFGS=${2:-"restic rustic cairn"}
OPS=${3:-"vol_full vol_incr vol_restore tree_full tree_incr tree_restore"}
S3S_FS=${S3S_FS:-$HOME/.cache/cairn-ci/s3s-fs/bin/s3s-fs}
[ -x "$S3S_FS" ] || { echo "no s3s-fs at $S3S_FS (scripts/ci.d/20-storage.sh installs it)" >&2; exit 2; }
if [ -z "${CAIRN_BIN:-}" ]; then
  cargo build --release --locked -p cairn-cli
  # A fixed copy: rebuilding during a run must not change the binary under test.
  mkdir -p "$CAIRN_BENCH_DIR/bin" && cp target/release/cairn "$CAIRN_BENCH_DIR/bin/cairn"
  CAIRN_BIN=$CAIRN_BENCH_DIR/bin/cairn
fi
export CAIRN_BIN
export PBRES=${PBRES:-$CAIRN_BENCH_DIR/results-s3-$(date +%Y%m%d-%H%M).tsv}

# Everything but the data and the results lives in one directory, deleted at the end: the
# server's data, the kit's copy, work tree, restores, caches and logs.
RUNDIR=$(mktemp -d "$CAIRN_BENCH_DIR/s3run.XXXXXX")
export S3_DATA=$RUNDIR/s3data PBDATA=${PBDATA:-$CAIRN_BENCH_DIR/data}
mkdir -p "$S3_DATA"
S3_PID=
stop() {
  if [ -n "$S3_PID" ]; then kill "$S3_PID" 2>/dev/null || true; wait "$S3_PID" 2>/dev/null || true; fi
  if [ -n "${BENCH_S3_KEEP:-}" ]; then echo "kept: $RUNDIR"; else rm -rf "$RUNDIR"; fi
}
trap stop EXIT
trap 'exit 130' INT TERM

S3_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export S3_PORT
KEY=cairnbench SECRET=cairnbench-secret-0
"$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key $KEY --secret-key $SECRET \
  "$S3_DATA" >"$RUNDIR/s3s-fs.log" 2>&1 &
S3_PID=$!
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" || { tail -n 30 "$RUNDIR/s3s-fs.log" >&2; exit 1; }
echo "s3s-fs $("$S3S_FS" --version | awk '{print $2}') on 127.0.0.1:$S3_PORT (pid $S3_PID), data in $S3_DATA"

# How each tool reaches the server. restic: AWS_* with its s3:http://… URL (path style for an
# IP endpoint). rustic: OpenDAL's S3 service, options in RUSTIC_REPO_OPT_* (bucket and root
# are set per repository by the kit's copy). Cairn: CAIRN_S3_ENDPOINT, CAIRN_ALLOW_HTTP and
# AWS_* (path style by default).
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1
export CAIRN_S3_ENDPOINT=http://127.0.0.1:$S3_PORT CAIRN_ALLOW_HTTP=1
export RUSTIC_REPO_OPT_ENDPOINT=http://127.0.0.1:$S3_PORT RUSTIC_REPO_OPT_REGION=us-east-1 \
  RUSTIC_REPO_OPT_ACCESS_KEY_ID=$KEY RUSTIC_REPO_OPT_SECRET_ACCESS_KEY=$SECRET

python3 scripts/bench-s3.py kit "$KIT" "$RUNDIR/kit"
# The kit's work files under RUNDIR; the data from the shared place.
export PBWORK=$RUNDIR/work
for r in $(seq 1 "$RUNS"); do
  for c in $CFGS; do
    CAIRN_BENCH_DIR=$RUNDIR "$RUNDIR/kit/bench.sh" "$c" "$r" "$OPS" ||
      echo "[$c r$r] bench.sh exited with $?"
    # Sizes are in the results; keep the disk and the page cache tidy.
    for k in vol tree; do
      b=$c-$r-$k
      rm -rf "${S3_DATA:?}/$b"
      find "$S3_DATA" -maxdepth 1 -name ".bucket-$(printf %s "$b" | base64 -w0 | tr '+/' '-_' | tr -d =).*" -delete
    done
  done
done
echo
python3 "$ROOT/scripts/bench-s3.py" report "$PBRES"
echo "results: $PBRES"
