#!/usr/bin/env bash
# localpg.sh: a private PostgreSQL cluster for development and tests, from the
# system's PostgreSQL binaries (installed with apt-get when missing and run as
# root). The server listens on 127.0.0.1 only, with a generated password, and
# runs as an unprivileged OS user when this script runs as root.
#
#   scripts/localpg.sh start DIR [PORT]   start (or reuse) the cluster in DIR;
#                                         prints the database URL on stdout
#   scripts/localpg.sh stop DIR           stop it
#   scripts/localpg.sh url DIR [ROLE]     print the URL of a running cluster: the
#                                         superuser's, or ROLE's (owner or login)
#   scripts/localpg.sh roles DIR          make the production role split in DIR's
#                                         cluster (once; idempotent): sunpath_app
#                                         (NOLOGIN), sunpath_owner owning database
#                                         sunpath (migrates), sunpath_login granted
#                                         only sunpath_app (serves)
#   scripts/localpg.sh crash DIR          stop it immediately (as a crash) and start it
#   scripts/localpg.sh replica PRIMARY DIR  start a streaming replica of the running
#                                         cluster in PRIMARY (pg_basebackup -R) in DIR;
#                                         prints its URL
#
# DIR/data is the cluster, DIR/log its log, DIR/password and DIR/port what the
# URL needs (DIR/owner.password and DIR/login.password for the roles). Everything else goes to stderr so `URL=$(… start …)` works.
set -euo pipefail

say() { echo "localpg: $*" >&2; }
die() { say "$*"; exit 1; }

find_bindir() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
	done
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return 0
	fi
	return 1
}

ensure_binaries() {
	if BINDIR=$(find_bindir); then return 0; fi
	[ "$(id -u)" = 0 ] || die "PostgreSQL server binaries not found; install the 'postgresql' package (or set SUNPATH_DATABASE_URL)"
	say "PostgreSQL not found: installing Debian's postgresql package"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
	BINDIR=$(find_bindir) || die "postgresql installed but initdb/pg_ctl not found"
}

# as_owner runs a command as the cluster's OS user.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PGUSER_OS" -- "$@"
	else
		"$@"
	fi
}

choose_os_user() {
	if [ "$(id -u)" != 0 ]; then PGUSER_OS=$(id -un); return; fi
	if id postgres >/dev/null 2>&1; then
		PGUSER_OS=postgres
	else
		PGUSER_OS=sunpath-pg
		id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
	fi
}

free_port() {
	local p
	for p in $(seq 15432 15532); do # below the ephemeral range (32768-60999)
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	die "no free port in 15432-15532"
}

url() {
	local dir=$1 role=${2:-}
	[ -f "$dir/password" ] && [ -f "$dir/port" ] || die "no cluster in $dir"
	case "$role" in
	"") echo "postgres://sunpath:$(cat "$dir/password")@127.0.0.1:$(cat "$dir/port")/sunpath?sslmode=disable" ;;
	owner | login)
		[ -f "$dir/$role.password" ] || die "no $role role in $dir (run: $0 roles $dir)"
		echo "postgres://sunpath_$role:$(cat "$dir/$role.password")@127.0.0.1:$(cat "$dir/port")/sunpath?sslmode=disable"
		;;
	*) die "unknown role $role (owner or login)" ;;
	esac
}

# roles sets up what deploy/RUNBOOK.md#database-roles asks a database
# administrator for: the service's login role cannot alter, disable or drop
# the audit trail's guards because it owns nothing. A database migrated before
# the split (owned by the superuser) is handed to sunpath_owner.
roles() {
	local dir=$1 r
	ensure_binaries
	for r in owner login; do
		if [ ! -f "$dir/$r.password" ]; then
			(umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/$r.password")
		fi
	done
	PGPASSWORD=$(cat "$dir/password") "$BINDIR/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$dir/port")" -U sunpath -d sunpath \
		-v owner_pw="$(cat "$dir/owner.password")" -v login_pw="$(cat "$dir/login.password")" >&2 <<'SQL'
SET client_min_messages = warning;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_app') AS need_app,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_owner') AS need_owner,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_login') AS need_login \gset
\if :need_app
CREATE ROLE sunpath_app NOLOGIN;
\endif
\if :need_owner
CREATE ROLE sunpath_owner LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB;
\endif
\if :need_login
CREATE ROLE sunpath_login LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB;
\endif
ALTER ROLE sunpath_owner PASSWORD :'owner_pw';
ALTER ROLE sunpath_login PASSWORD :'login_pw';
GRANT sunpath_app TO sunpath_login;
ALTER DATABASE sunpath OWNER TO sunpath_owner;
DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v') AND pg_get_userbyid(c.relowner) <> 'sunpath_owner' LOOP
		EXECUTE format('ALTER TABLE %s OWNER TO sunpath_owner', r.name);
	END LOOP;
	FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	          WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> 'sunpath_owner' LOOP
		EXECUTE format('ALTER FUNCTION %s OWNER TO sunpath_owner', r.name);
	END LOOP;
END
$$;
SQL
}

start() {
	local dir=$1 port=${2:-}
	ensure_binaries
	choose_os_user
	# Starts run one at a time: a free port stays free only until the
	# cluster that chose it listens (parallel tests start several clusters).
	# The server must not inherit the lock (9>&- below), or it would hold it.
	if command -v flock >/dev/null; then
		exec 9>>"${TMPDIR:-/tmp}/sunpath-localpg-$(id -u).lock"
		flock 9
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		chown "$PGUSER_OS" "$dir"
		runuser -u "$PGUSER_OS" -- test -w "$dir" ||
			die "$PGUSER_OS cannot write $dir (a parent directory is not searchable); use another directory or set SUNPATH_DATABASE_URL"
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		[ -n "$port" ] || port=$(free_port)
		say "initialising a new cluster in $dir/data (port $port)"
		umask 077
		head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/password"
		echo "$port" >"$dir/port"
		local pwfile
		pwfile=$(mktemp)
		cp "$dir/password" "$pwfile"
		[ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$pwfile"
		as_owner "$BINDIR/initdb" -D "$dir/data" -U sunpath --pwfile="$pwfile" \
			--auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --data-checksums >"$dir/initdb.log"
		rm -f "$pwfile"
		cat >>"$dir/data/postgresql.conf" <<CONF
# localpg.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = ${LOCALPG_MAX_CONNECTIONS:-200}
fsync = on
synchronous_commit = on
CONF
		NEW=1
	fi
	if as_owner "$BINDIR/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		say "reusing the running cluster in $dir"
	else
		[ "$(id -u)" = 0 ] && touch "$dir/log" && chown "$PGUSER_OS" "$dir/log"
		as_owner "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >&2 9>&- ||
			{ tail -20 "$dir/log" >&2; die "PostgreSQL did not start (log: $dir/log)"; }
	fi
	if [ "${NEW:-0}" = 1 ]; then
		PGPASSWORD=$(cat "$dir/password") "$BINDIR/psql" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -U sunpath -d postgres \
			-c "CREATE DATABASE sunpath" >&2
	fi
	url "$dir"
}

stop() {
	local dir=$1
	ensure_binaries
	choose_os_user
	[ -d "$dir/data" ] || return 0
	as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
}

# crash stops the server the way a power cut would (no shutdown checkpoint)
# and starts it again: WAL recovery must bring back every committed write.
crash() {
	local dir=$1
	ensure_binaries
	choose_os_user
	as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m immediate -w stop >&2
	as_owner "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >&2
}

# replica clones the running cluster in PRIMARY into DIR as a hot standby
# streaming from it (the primary learns to accept replication from
# loopback), on a free port, with the primary's password.
replica() {
	local primary=$1 dir=$2 port
	ensure_binaries
	choose_os_user
	[ -f "$primary/port" ] || die "no cluster in $primary"
	if command -v flock >/dev/null; then
		exec 9>>"${TMPDIR:-/tmp}/sunpath-localpg-$(id -u).lock"
		flock 9
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
	if ! grep -q '^host replication sunpath 127.0.0.1/32' "$primary/data/pg_hba.conf"; then
		echo 'host replication sunpath 127.0.0.1/32 scram-sha-256' >>"$primary/data/pg_hba.conf"
		as_owner "$BINDIR/pg_ctl" -D "$primary/data" reload >&2
	fi
	port=$(free_port)
	umask 077
	cp "$primary/password" "$dir/password"
	echo "$port" >"$dir/port"
	local pass
	pass=$(cat "$primary/password")
	as_owner env PGPASSWORD="$pass" "$BINDIR/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U sunpath \
		-D "$dir/data" -R -X stream -c fast >&2
	echo "port = $port" >>"$dir/data/postgresql.conf"
	[ "$(id -u)" = 0 ] && touch "$dir/log" && chown "$PGUSER_OS" "$dir/log"
	as_owner "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >&2 9>&- ||
		{ tail -20 "$dir/log" >&2; die "the replica did not start (log: $dir/log)"; }
	url "$dir"
}

case "${1:-}" in
start) [ $# -ge 2 ] || die "usage: $0 start DIR [PORT]"; start "$2" "${3:-}" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
url) [ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 url DIR [owner|login]"; url "$2" "${3:-}" ;;
roles) [ $# -eq 2 ] || die "usage: $0 roles DIR"; roles "$2" ;;
crash) [ $# -eq 2 ] || die "usage: $0 crash DIR"; crash "$2" ;;
replica) [ $# -eq 3 ] || die "usage: $0 replica PRIMARY DIR"; replica "$2" "$3" ;;
*) die "usage: $0 start DIR [PORT] | stop DIR | url DIR [owner|login] | roles DIR | crash DIR | replica PRIMARY DIR" ;;
esac
