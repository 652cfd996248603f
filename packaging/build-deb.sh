#!/bin/bash
# build-deb.sh - build the Debian package of this tree into dist/
# (`make deb`).  Copies the committed and working-tree sources (not the
# build outputs) to a temporary directory, adds packaging/debian as debian/,
# and runs dpkg-buildpackage there.  Needs dpkg-dev and debhelper
# (apt-get install dpkg-dev debhelper) besides the build dependencies.
set -eu
cd "$(dirname "$0")/.."
for t in dpkg-buildpackage dh; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "build-deb: $t not found: apt-get install dpkg-dev debhelper" >&2
		exit 1
	fi
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SRC=$TMP/quipu-0.1.0
mkdir -p "$SRC"
tar --exclude=./build --exclude=./build-asan --exclude=./build-fuzz \
	--exclude=./bin --exclude=./bin-asan --exclude=./bin-fuzz \
	--exclude=./demo-data --exclude=./dist --exclude=./.git -cf - . |
	tar -xf - -C "$SRC"
cp -a packaging/debian "$SRC/debian"
(cd "$SRC" && dpkg-buildpackage -us -uc -b >&2)
mkdir -p dist
mv "$TMP"/*.deb dist/
ls dist/*.deb
