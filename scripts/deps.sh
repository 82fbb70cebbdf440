#!/bin/sh
# Install what pinhole needs from Debian 12 packages.
#   deps.sh build   compiler and libraries to build and run the daemon
#   deps.sh test    plus everything the tests use (cmocka, clang/libFuzzer,
#                   SIPp, nftables, tcpdump, pytest)
# Skips apt when everything is already there (fast re-runs, no root needed).
set -e
BUILD_PKGS="build-essential pkg-config libssl-dev libsqlite3-dev libinih-dev \
libjansson-dev libmicrohttpd-dev"
TEST_PKGS="libcmocka-dev clang libclang-rt-14-dev sip-tester nftables tcpdump \
iproute2 python3 python3-pytest procps sqlite3 coturn chromium"

pkgs="$BUILD_PKGS"
[ "$1" = test ] && pkgs="$pkgs $TEST_PKGS"
# Node.js for the browser test: use the machine's when it has one (a
# newer node than Debian's may be installed, and Debian's conflicts with it)
if [ "$1" = test ] && ! command -v npm >/dev/null 2>&1; then
	pkgs="$pkgs nodejs npm"
fi

npm_deps() {
	# playwright-core drives Debian's chromium; never download a browser
	[ "$1" = test ] && [ ! -d node_modules/playwright-core ] &&
		PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	return 0
}

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	npm_deps "$1"
	exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
npm_deps "$1"
