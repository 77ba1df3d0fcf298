#!/usr/bin/env bash
# ensure-promtool.sh: print the path of a working promtool (Prometheus's rule
# and config checker) on stdout; progress goes to stderr. scripts/test.sh uses
# it so deploy/deploy_test.go can run `promtool check rules` and
# `promtool test rules`:
#
#   SUNPATH_PROMTOOL=$(scripts/ensure-promtool.sh)
#   export SUNPATH_PROMTOOL
#
# Where it looks, in order:
#   1. $SUNPATH_PROMTOOL when set (it must run), then promtool on PATH;
#   2. a copy an earlier run cached in $SUNPATH_TOOLS_DIR
#      (default ${XDG_CACHE_HOME:-$HOME/.cache}/sunpath);
#   3. Debian's prometheus package: only the promtool binary is extracted from
#      the .deb (apt-get download + dpkg-deb) into the cache. The package is
#      never installed, so its postinst never runs: no prometheus daemon is
#      started (Debian's init script would listen on :9090 wherever
#      policy-rc.d allows it), no service is enabled, no system user is added.
#      When root and the package is unknown, apt-get update runs first.
#      About 10 seconds on a fresh machine (a 19 MB download).
#   4. only with SUNPATH_PROMTOOL_FROM_SOURCE=1: build promtool from source with
#      Go. Opt-in because it is slow: more than 10 minutes and ~1 GB of module
#      cache on 2 cores.
# Exits 1, saying what to install, when none of these works.
set -euo pipefail

say() { echo "ensure-promtool: $*" >&2; }
die() { say "$*"; exit 1; }

# Prometheus's Go module version for the source build (v0.308.0 is Prometheus
# 3.8.0). `go install …@version` refuses it (its go.mod has exclude/replace
# directives), so it is built inside a throwaway module.
PROMETHEUS_MODULE=github.com/prometheus/prometheus
PROMETHEUS_MODULE_VERSION=v0.308.0

cache=${SUNPATH_TOOLS_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sunpath}

works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

# install_into_cache BIN NAME moves BIN to $cache/NAME/promtool atomically (a
# concurrent run may win the race; either copy is fine) and prints the path.
install_into_cache() {
	local bin=$1 dest="$cache/$2" staging
	mkdir -p "$cache" || die "cannot create the cache directory $cache (set SUNPATH_TOOLS_DIR)"
	staging=$(mktemp -d "$cache/.promtool.XXXXXX") || die "cannot write to $cache"
	chmod 0755 "$staging"
	mv "$bin" "$staging/promtool" || die "cannot move promtool into $cache"
	if ! mv -T "$staging" "$dest" 2>/dev/null; then
		rm -rf "$staging"
	fi
	works "$dest/promtool" || die "$dest/promtool does not run"
	echo "$dest/promtool"
}

candidate() { apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}'; }

# from_debian and from_source run in subshells so their EXIT traps clean up
# their temp dirs. They are called as conditions, where bash ignores set -e, so
# every step checks its own status.
from_debian() (
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
		say "no apt-get/dpkg-deb (not Debian)"
		exit 1
	fi
	cand=$(candidate)
	if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
		if [ "$(id -u)" != 0 ]; then
			say "apt knows no prometheus package and only root can run apt-get update"
			exit 1
		fi
		say "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || exit 1
		cand=$(candidate)
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
			say "no prometheus package in the configured apt sources"
			exit 1
		fi
	fi
	mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache (set SUNPATH_TOOLS_DIR)"
	tmp=$(mktemp -d) || exit 1
	trap 'rm -rf "$tmp"' EXIT
	# apt downloads as its unprivileged _apt user when it can write the directory.
	if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
	say "extracting promtool from Debian's prometheus $cand (the package is not installed)"
	(cd "$tmp" && apt-get download -qq "prometheus=$cand" >&2) || exit 1
	deb=$(ls "$tmp"/prometheus_*.deb) || exit 1
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/bin/promtool || exit 1
	works "$tmp/usr/bin/promtool" || {
		say "the extracted promtool does not run"
		exit 1
	}
	install_into_cache "$tmp/usr/bin/promtool" "promtool-deb-${cand//[^A-Za-z0-9.+~-]/_}"
)

from_source() (
	[ "${SUNPATH_PROMTOOL_FROM_SOURCE:-}" = 1 ] || exit 1
	command -v go >/dev/null 2>&1 || {
		say "no go on PATH for the source build"
		exit 1
	}
	mkdir -p "$cache" 2>/dev/null || die "cannot create the cache directory $cache (set SUNPATH_TOOLS_DIR)"
	tmp=$(mktemp -d) || exit 1
	trap 'rm -rf "$tmp"' EXIT
	say "building promtool $PROMETHEUS_MODULE_VERSION from source (slow: 10+ minutes on 2 cores)"
	cd "$tmp" || exit 1
	go mod init promtoolbuild >/dev/null 2>&1 || exit 1
	go get "$PROMETHEUS_MODULE/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2 || exit 1
	CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$tmp/promtool" "$PROMETHEUS_MODULE/cmd/promtool" >&2 || exit 1
	install_into_cache "$tmp/promtool" "promtool-src-$PROMETHEUS_MODULE_VERSION"
)

if [ -n "${SUNPATH_PROMTOOL:-}" ]; then
	works "$SUNPATH_PROMTOOL" || die "SUNPATH_PROMTOOL=$SUNPATH_PROMTOOL does not run"
	echo "$SUNPATH_PROMTOOL"
	exit 0
fi
if p=$(command -v promtool 2>/dev/null) && works "$p"; then
	echo "$p"
	exit 0
fi
for p in "$cache"/promtool-*/promtool; do
	if works "$p"; then
		echo "$p"
		exit 0
	fi
done
if from_debian; then exit 0; fi
if from_source; then exit 0; fi
die "no promtool found: put one on PATH or name it in SUNPATH_PROMTOOL (Debian's prometheus package or a Prometheus release has it), or rerun with SUNPATH_PROMTOOL_FROM_SOURCE=1 to build it with Go (slow)"
