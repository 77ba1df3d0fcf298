#!/usr/bin/env bash
# test.sh: run every test against a throwaway PostgreSQL started for the run
# (or the server named by SUNPATH_TEST_DATABASE_URL, if set). Each database
# test clones its own freshly migrated database from a template.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SUNPATH_TEST_DATABASE_URL:-}" ]; then
	dir=$(mktemp -d /tmp/sunpath-pgtest.XXXXXX)
	trap 'scripts/localpg.sh stop "$dir" || true; rm -rf "$dir"' EXIT
	SUNPATH_TEST_DATABASE_URL=$(LOCALPG_MAX_CONNECTIONS=400 scripts/localpg.sh start "$dir")
	export SUNPATH_TEST_DATABASE_URL
fi
# Tools the tests drive for real: promtool (alert rules) and Chromium (UI).
SUNPATH_PROMTOOL=$(scripts/ensure-promtool.sh)
export SUNPATH_PROMTOOL
if SUNPATH_CHROMIUM=$(scripts/ensure-chromium.sh); then
	export SUNPATH_CHROMIUM
elif [ "${CI:-}" = true ]; then
	exit 1
fi
# A CJK font, so that screenshots of the zh-CN pages show Chinese (best effort).
scripts/ensure-fonts.sh || true
go test -race -shuffle=on -count=1 -timeout 30m "${@:-./...}"
