#!/bin/sh
# Roles for Sunpath (deploy/RUNBOOK.md#database-roles), run by the postgres
# image on first initialisation (/docker-entrypoint-initdb.d) and safe to run
# again on an existing volume:
#
#   docker compose -f deploy/compose.yaml --env-file deploy/.env exec postgres \
#     sh /docker-entrypoint-initdb.d/10-sunpath-roles.sh
#
# sunpath (POSTGRES_USER) owns the database and migrates it; the service logs
# in as sunpath_login, a member of sunpath_app only, which owns nothing and so
# cannot disable, update, delete or truncate the audit trail.
set -eu
: "${POSTGRES_LOGIN_PASSWORD:?set POSTGRES_LOGIN_PASSWORD}"
psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v login_pw="$POSTGRES_LOGIN_PASSWORD" <<'SQL'
SET client_min_messages = warning;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_app') AS need_app,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sunpath_login') AS need_login \gset
\if :need_app
CREATE ROLE sunpath_app NOLOGIN;
\endif
\if :need_login
CREATE ROLE sunpath_login LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB;
\endif
ALTER ROLE sunpath_login PASSWORD :'login_pw';
GRANT sunpath_app TO sunpath_login;
SQL
