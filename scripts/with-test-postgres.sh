#!/usr/bin/env bash
# Runs a command (`make test`: swift test) beside a throwaway PostgreSQL server, so the store's tests run
# against PostgreSQL as well as SQLite. The server: a cluster made by initdb in a temporary folder (owned by
# the `postgres` user when run as root: PostgreSQL refuses to run as root), on a free loopback port, with
# password (SCRAM) authentication over TCP and TLS on a self-signed certificate. The command gets
# HEADROOM_TEST_PG=postgres://headroom:PASSWORD@127.0.0.1:PORT/headroom_test and HEADROOM_TEST_PG_TLS=1.
# The server is stopped and its folder removed when the command ends, however it ends (trap).
# When HEADROOM_TEST_PG is set already, that server is used and none is started.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG…]" >&2; exit 2; }
if [ -n "${HEADROOM_TEST_PG:-}" ]; then exec "$@"; fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || { echo "$0: no PostgreSQL server (initdb) under /usr/lib/postgresql: install the postgresql package" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/headroom-pg.XXXXXX")
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
  chown postgres: "$dir"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
data="$dir/data"
started=""
cleanup() {
  status=$?
  if [ -n "$started" ]; then as_pg "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing answers on (another job may still take it before the server binds: the start below
# tries again on another port).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
as_pg sh -c "umask 077; printf '%s\n' '$password' > '$dir/pw'"
as_pg "$bindir/initdb" -D "$data" -U headroom --pwfile="$dir/pw" --auth-local=trust --auth-host=scram-sha-256 --locale=C \
  -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_pg openssl req -new -x509 -days 2 -nodes -subj /CN=localhost -keyout "$data/server.key" -out "$data/server.crt" \
  >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; exit 1; }
as_pg chmod 600 "$data/server.key"
as_pg sh -c "cat >> '$data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
ssl = on
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
CONF
for attempt in 1 2 3 4 5; do
  port=$(free_port) || { echo "$0: no free loopback port found" >&2; exit 1; }
  if as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null; then started=1; break; fi
  [ "$attempt" = 5 ] && { cat "$dir/server.log" >&2; exit 1; }
done
as_pg "$bindir/psql" -X -q -h "$dir" -p "$port" -U headroom -d postgres -c 'CREATE DATABASE headroom_test' >/dev/null
echo "$0: PostgreSQL $("$bindir/postgres" -V | awk '{print $3}') on 127.0.0.1:$port for the store tests (HEADROOM_TEST_PG)" >&2

export HEADROOM_TEST_PG="postgres://headroom:$password@127.0.0.1:$port/headroom_test"
export HEADROOM_TEST_PG_TLS=1
"$@"
