#!/usr/bin/env bash
# run.sh: migrate and serve bin/sunpath. Without SUNPATH_DATABASE_URL, a
# local PostgreSQL under .data/pg is started (or reused) first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SUNPATH_DATABASE_URL:-}" ]; then
	SUNPATH_DATABASE_URL=$(scripts/localpg.sh start .data/pg)
	export SUNPATH_DATABASE_URL
	echo "Using the local PostgreSQL in .data/pg (stop it with: scripts/localpg.sh stop .data/pg)"
fi
bin/sunpath migrate
[ "${1:-}" = migrate-only ] && exit 0
exec bin/sunpath serve
