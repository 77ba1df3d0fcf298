#!/usr/bin/env bash
# ensure-chromium.sh: print the path of a usable Chromium on stdout; progress
# goes to stderr. scripts/test.sh uses it for the web UI's browser tests
# (internal/web), which drive headless Chromium with chromedp:
#
#   SUNPATH_CHROMIUM=$(scripts/ensure-chromium.sh)
#   export SUNPATH_CHROMIUM
#
# Where it looks, in order:
#   1. $SUNPATH_CHROMIUM when set (it must run);
#   2. chromium, chromium-browser, google-chrome-stable, google-chrome on PATH,
#      then /usr/bin/chromium;
#   3. when running as root: Debian's chromium package
#      (apt-get update && apt-get install -y chromium; about 100 MB).
# When root and no Chinese font is installed, it also installs the small
# fonts-wqy-microhei (best effort), so that screenshots of the zh-CN pages
# show text rather than boxes; the tests themselves do not depend on fonts.
# Exits 1, saying what to install, when none of these works.
set -euo pipefail

say() { echo "ensure-chromium: $*" >&2; }
die() { say "$*"; exit 1; }

# works BIN: BIN exists and answers --version (Debian's wrapper script may
# print warnings to stderr; only the exit status counts).
works() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

if [ -n "${SUNPATH_CHROMIUM:-}" ]; then
	works "$SUNPATH_CHROMIUM" || die "SUNPATH_CHROMIUM=$SUNPATH_CHROMIUM does not run"
	echo "$SUNPATH_CHROMIUM"
	exit 0
fi

find_one() {
	local name path
	for name in chromium chromium-browser google-chrome-stable google-chrome; do
		path=$(command -v "$name" 2>/dev/null || true)
		if works "$path"; then
			echo "$path"
			return 0
		fi
	done
	if works /usr/bin/chromium; then
		echo /usr/bin/chromium
		return 0
	fi
	return 1
}

# cjk_font installs a Chinese font for readable screenshots; never fatal.
cjk_font() {
	[ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
	command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ] && return 0
	say "installing fonts-wqy-microhei for Chinese text in screenshots"
	DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-wqy-microhei >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-wqy-microhei >&2; } ||
		say "could not install a Chinese font; screenshots of zh-CN pages will show boxes"
}

if path=$(find_one); then
	cjk_font
	echo "$path"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	die "no Chromium found: install Debian's 'chromium' package (sudo apt-get install -y chromium), or set SUNPATH_CHROMIUM to a Chromium or Chrome binary"
fi
command -v apt-get >/dev/null 2>&1 || die "no Chromium found and no apt-get: install Chromium, or set SUNPATH_CHROMIUM"

say "installing Debian's chromium package (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update >&2 || die "apt-get update failed"
apt-get install -y chromium >&2 || die "apt-get install chromium failed"
cjk_font
find_one || die "chromium was installed but does not run: try '/usr/bin/chromium --version'"
