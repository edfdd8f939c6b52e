# shellcheck shell=bash
# Databases for the hook recipe tests (crates/cairn-kube/tests/it/databases.rs): PostgreSQL,
# MariaDB and Redis from Debian's packages, each started on 127.0.0.1 on a private port and
# data directory. Sourced by scripts/test.sh; exports CAIRN_TEST_PG_*, CAIRN_TEST_MARIADB_*,
# CAIRN_TEST_REDIS_* and CAIRN_TEST_DB_RUNAS, appends the server PIDs to CI_PIDS.

db_missing=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || db_missing+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || db_missing+=(mariadb-server mariadb-client)
command -v redis-server >/dev/null 2>&1 || db_missing+=(redis-server)
if [ ${#db_missing[@]} -gt 0 ]; then
  apt-get update -qq
  # The packages' own services must not start (policy-rc.d denies it in containers).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${db_missing[@]}" >/dev/null
fi

CAIRN_TEST_PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")
export CAIRN_TEST_PG_BIN

# PostgreSQL refuses to run as root: when we are root, the servers (and the tests' second
# servers) run as an unprivileged user.
if [ "$(id -u)" = 0 ]; then
  id cairnci >/dev/null 2>&1 || useradd --system --create-home --shell /bin/sh cairnci
  CAIRN_TEST_DB_RUNAS=cairnci
  db_as() { runuser -u cairnci -- "$@"; }
else
  CAIRN_TEST_DB_RUNAS=
  db_as() { "$@"; }
fi
export CAIRN_TEST_DB_RUNAS

db_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
db_wait() { # what, command…: waits up to 30 s for the command to succeed
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$what did not start" >&2; return 1
}

DB_ROOT=$(mktemp -d /tmp/cairn-ci-db.XXXXXX)
chmod 755 "$DB_ROOT"
[ -z "$CAIRN_TEST_DB_RUNAS" ] || chown "$CAIRN_TEST_DB_RUNAS" "$DB_ROOT"

# PostgreSQL: a fresh cluster, trust auth on loopback only, WAL kept for file-level backups.
CAIRN_TEST_PG_DATA=$DB_ROOT/pg
CAIRN_TEST_PG_PORT=$(db_free_port)
db_as "$CAIRN_TEST_PG_BIN/initdb" -D "$CAIRN_TEST_PG_DATA" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
db_as "$CAIRN_TEST_PG_BIN/postgres" -D "$CAIRN_TEST_PG_DATA" -p "$CAIRN_TEST_PG_PORT" \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories="$DB_ROOT" -c wal_keep_size=256MB \
  -c fsync=off >"$DB_ROOT/pg.log" 2>&1 &
CI_PIDS+=($!)
db_wait PostgreSQL "$CAIRN_TEST_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CAIRN_TEST_PG_PORT"
# runuser does not pass a TERM on to the server: stop the server itself too.
CI_PIDS+=("$(head -n 1 "$CAIRN_TEST_PG_DATA/postmaster.pid")")
export CAIRN_TEST_PG_DATA CAIRN_TEST_PG_PORT CAIRN_TEST_PG_HOST=127.0.0.1 CAIRN_TEST_PG_USER=postgres

# MariaDB: a fresh datadir without grant tables (any client is root), loopback only.
CAIRN_TEST_MARIADB_DATA=$DB_ROOT/mariadb
CAIRN_TEST_MARIADB_PORT=$(db_free_port)
db_as mariadb-install-db --no-defaults --datadir="$CAIRN_TEST_MARIADB_DATA" --auth-root-authentication-method=normal \
  --skip-test-db >"$DB_ROOT/mariadb-install.log" 2>&1
db_as mariadbd --no-defaults --datadir="$CAIRN_TEST_MARIADB_DATA" --socket="$DB_ROOT/mariadb.sock" \
  --port="$CAIRN_TEST_MARIADB_PORT" --bind-address=127.0.0.1 --skip-grant-tables \
  --pid-file="$DB_ROOT/mariadb.pid" >"$DB_ROOT/mariadb.log" 2>&1 &
CI_PIDS+=($!)
db_wait MariaDB mariadb --no-defaults -h 127.0.0.1 -P "$CAIRN_TEST_MARIADB_PORT" -u root -e 'SELECT 1'
CI_PIDS+=("$(cat "$DB_ROOT/mariadb.pid")")
export CAIRN_TEST_MARIADB_DATA CAIRN_TEST_MARIADB_PORT CAIRN_TEST_MARIADB_HOST=127.0.0.1 CAIRN_TEST_MARIADB_USER=root

# Redis: a private dir for dump.rdb, no periodic saves (the test asks for one).
CAIRN_TEST_REDIS_DIR=$DB_ROOT/redis
CAIRN_TEST_REDIS_PORT=$(db_free_port)
mkdir -p "$CAIRN_TEST_REDIS_DIR"
[ -z "$CAIRN_TEST_DB_RUNAS" ] || chown "$CAIRN_TEST_DB_RUNAS" "$CAIRN_TEST_REDIS_DIR"
db_as redis-server --bind 127.0.0.1 --port "$CAIRN_TEST_REDIS_PORT" --dir "$CAIRN_TEST_REDIS_DIR" \
  --save '' --appendonly no --daemonize no >"$DB_ROOT/redis.log" 2>&1 &
CI_PIDS+=($!)
db_wait Redis redis-cli -h 127.0.0.1 -p "$CAIRN_TEST_REDIS_PORT" PING
CI_PIDS+=("$(redis-cli -h 127.0.0.1 -p "$CAIRN_TEST_REDIS_PORT" INFO server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')")
export CAIRN_TEST_REDIS_DIR CAIRN_TEST_REDIS_PORT CAIRN_TEST_REDIS_HOST=127.0.0.1
