#!/bin/sh
# Installs the Debian 12 packages that quipu's build, tests and benchmarks need.
# Idempotent: when every package is already present it prints nothing and exits 0.
# Runs as root (or through sudo when available).
set -eu

PKGS="build-essential pkg-config liblmdb-dev libsodium-dev libmsgpack-dev libuv1-dev \
check libjansson-dev libzstd-dev libgeos-dev libproj-dev iproute2 python3"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-deps: missing packages:$missing; run this script as root" >&2
		exit 1
	fi
fi

echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
