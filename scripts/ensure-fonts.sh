#!/usr/bin/env bash
# ensure-fonts.sh: make sure a Chinese (CJK) font is installed, so that
# headless Chromium draws the zh-CN pages' text in the browser tests'
# screenshots instead of boxes. scripts/test.sh runs it; the tests' checks
# do not depend on fonts, only what a person sees in the screenshots does.
#
# When a Noto Sans CJK font is already there it does nothing. Otherwise,
# when running as root with apt-get, it installs Debian's fonts-noto-cjk
# (the font the UI's CSS names for Chinese on Linux). Never fatal: without
# it the screenshots may show boxes, and it says so on stderr.
set -euo pipefail

say() { echo "ensure-fonts: $*" >&2; }

have_noto() { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh family 2>/dev/null | grep -qi 'Noto Sans CJK'; }

have_noto && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	say "no Noto Sans CJK font: install Debian's fonts-noto-cjk (sudo apt-get install -y fonts-noto-cjk) for readable zh-CN screenshots"
	exit 0
fi
say "installing fonts-noto-cjk for Chinese text in screenshots"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends fonts-noto-cjk >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends fonts-noto-cjk >&2; } ||
	{ say "could not install fonts-noto-cjk; zh-CN screenshots may show boxes"; exit 0; }
have_noto || say "fonts-noto-cjk installed, but fontconfig does not list it"
