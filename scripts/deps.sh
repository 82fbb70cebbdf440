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
iproute2 python3 python3-pytest procps sqlite3 coturn"

pkgs="$BUILD_PKGS"
[ "$1" = test ] && pkgs="$pkgs $TEST_PKGS"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
