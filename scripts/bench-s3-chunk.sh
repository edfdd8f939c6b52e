#!/bin/bash
# Same run, interleaved: Cairn volume first backup to s3s-fs with 8 MiB multipart chunks (the
# old default) and with 32 MiB (the default now: one PUT per 16 MiB pack). Wall, server CPU.
# Usage: scripts/bench-s3-chunk.sh   (needs the bench data, a release cairn in $CAIRN_BIN and
# the s3s-fs that scripts/ci.d/20-storage.sh installs)
set -u
D=${PBDATA:-$HOME/.cache/cairn-bench/data}; B=${CAIRN_BIN:-$HOME/.cache/cairn-bench/bin/cairn}
RUN=$(mktemp -d /tmp/chunkbench.XXXX); mkdir -p $RUN/s3
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
~/.cache/cairn-ci/s3s-fs/bin/s3s-fs --host 127.0.0.1 --port $PORT --access-key k --secret-key kkkkkkkk $RUN/s3 > $RUN/log 2>&1 &
SP=$!; trap "kill $SP; rm -rf $RUN" EXIT
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$PORT/ && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=kkkkkkkk AWS_REGION=us-east-1 CAIRN_S3_ENDPOINT=http://127.0.0.1:$PORT CAIRN_ALLOW_HTTP=1 CAIRN_PASSWORD=p CAIRN_STATE_DIR=$RUN/state
cpu() { awk '{print $14+$15}' /proc/$SP/stat; }
for r in 1 2 3; do for c in 8388608 33554432; do
  b=b$r$c; mkdir -p $RUN/s3/$b
  $B init -q --repo s3://$b/repo --kdf-memory 64 --kdf-iterations 1 >/dev/null
  sync; echo 3 > /proc/sys/vm/drop_caches; cat $D/vol.img > /dev/null
  c0=$(cpu); t0=$(date +%s.%N)
  CAIRN_STORAGE_CHUNK_SIZE=$c $B backup -q --repo s3://$b/repo --volume $D/vol.img >/dev/null || echo FAIL
  t1=$(date +%s.%N); c1=$(cpu)
  printf "run %s chunk %9s wall %.2f server_cpu %.2f\n" $r $c $(echo "$t1-$t0"|bc) $(echo "($c1-$c0)/100"|bc -l)
  rm -rf $RUN/s3/$b
done; done
