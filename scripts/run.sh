#!/usr/bin/env bash
# run.sh: migrate and serve bin/sunpath. Without SUNPATH_DATABASE_URL, a
# local PostgreSQL under .data/pg is started (or reused) first. Without
# encryption and signing keys, development keys are made once in
# .data/secrets.env (mode 600) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SUNPATH_DATABASE_URL:-}" ]; then
	SUNPATH_DATABASE_URL=$(scripts/localpg.sh start .data/pg)
	export SUNPATH_DATABASE_URL
	echo "Using the local PostgreSQL in .data/pg (stop it with: scripts/localpg.sh stop .data/pg)"
fi
if [ -z "${SUNPATH_CRYPTO_KEYS:-}" ]; then
	if [ ! -f .data/secrets.env ]; then
		mkdir -p .data
		umask 077
		{
			echo "SUNPATH_CRYPTO_KEYS=k1:$(bin/sunpath keys generate)"
			echo "SUNPATH_AUDIT_SIGNING_KEY=$(bin/sunpath keys generate)"
		} >.data/secrets.env
		echo "Made development keys in .data/secrets.env (keep them: they open the data)"
	fi
	set -a
	# shellcheck disable=SC1091
	. .data/secrets.env
	set +a
fi
bin/sunpath migrate
[ "${1:-}" = migrate-only ] && exit 0
exec bin/sunpath serve
