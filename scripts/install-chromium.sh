#!/usr/bin/env bash
# Headless Chromium for the web app's browser tests (tests/web): Debian's `chromium`
# package, installed if missing (as root). Playwright drives it with executable_path, so no
# browser is ever downloaded (`playwright install` is never run).
set -euo pipefail
CHROMIUM="${OPENLEDGER_CHROMIUM:-/usr/bin/chromium}"
die() { echo "install-chromium: $*" >&2; exit 1; }
[ -x "$CHROMIUM" ] && exit 0
[ "$(id -u)" -eq 0 ] || die "$CHROMIUM is missing and this is not root. Fix: run \
'sudo apt-get install -y chromium', then retry."
command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and apt-get is missing. \
Fix: install Chromium and set OPENLEDGER_CHROMIUM to its binary."
echo "install-chromium: installing Debian's chromium (apt-get install chromium)..." >&2
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2 \
    || die "apt-get install chromium failed. Fix: check the network and apt sources, then retry."
[ -x "$CHROMIUM" ] || die "chromium installed but $CHROMIUM is missing. Fix: set OPENLEDGER_CHROMIUM."
