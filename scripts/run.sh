#!/usr/bin/env bash
# run.sh: migrate and serve bin/sunpath. Without SUNPATH_DATABASE_URL, a
# local PostgreSQL under .data/pg is started (or reused) first, with the
# production role split (deploy/RUNBOOK.md#database-roles): it migrates as
# sunpath_owner and serves as sunpath_login, granted only sunpath_app. Without
# encryption and signing keys, development keys are made once in
# .data/secrets.env (mode 600) and reused; the local database URLs are kept
# there too (SUNPATH_DATABASE_URL, SUNPATH_DATABASE_MIGRATE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
db_url=${SUNPATH_DATABASE_URL:-}
migrate_url=${SUNPATH_DATABASE_MIGRATE_URL:-}
if [ -z "$db_url" ]; then
	scripts/localpg.sh start .data/pg >/dev/null
	scripts/localpg.sh roles .data/pg
	db_url=$(scripts/localpg.sh url .data/pg login)
	migrate_url=$(scripts/localpg.sh url .data/pg owner)
	echo "Using the local PostgreSQL in .data/pg (stop it with: scripts/localpg.sh stop .data/pg)"
	if [ -f .data/secrets.env ]; then
		# Replace only the database lines; everything else stays as it was.
		(
			umask 077
			grep -v -e '^SUNPATH_DATABASE_URL=' -e '^SUNPATH_DATABASE_MIGRATE_URL=' .data/secrets.env >.data/secrets.env.new || true
			echo "SUNPATH_DATABASE_URL=$db_url" >>.data/secrets.env.new
			echo "SUNPATH_DATABASE_MIGRATE_URL=$migrate_url" >>.data/secrets.env.new
			mv .data/secrets.env.new .data/secrets.env
		)
	fi
fi
if [ -z "${SUNPATH_CRYPTO_KEYS:-}" ]; then
	if [ ! -f .data/secrets.env ] || ! grep -q '^SUNPATH_CRYPTO_KEYS=' .data/secrets.env; then
		mkdir -p .data
		umask 077
		{
			echo "SUNPATH_CRYPTO_KEYS=k1:$(bin/sunpath keys generate)"
			echo "SUNPATH_AUDIT_SIGNING_KEY=$(bin/sunpath keys generate)"
			if [ -z "${SUNPATH_DATABASE_URL:-}" ]; then
				echo "SUNPATH_DATABASE_URL=$db_url"
				echo "SUNPATH_DATABASE_MIGRATE_URL=$migrate_url"
			fi
		} >>.data/secrets.env
		echo "Made development keys in .data/secrets.env (keep them: they open the data)"
	fi
	set -a
	# shellcheck disable=SC1091
	. .data/secrets.env
	set +a
fi
# The database named on entry (or the local one) wins over the file.
export SUNPATH_DATABASE_URL=$db_url
if [ -n "$migrate_url" ]; then
	export SUNPATH_DATABASE_MIGRATE_URL=$migrate_url
else
	unset SUNPATH_DATABASE_MIGRATE_URL
fi
bin/sunpath migrate
[ "${1:-}" = migrate-only ] && exit 0
exec bin/sunpath serve
