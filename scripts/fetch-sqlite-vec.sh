#!/bin/sh
# Fetch sqlite-vec's prebuilt loadable extension (the peer our differential
# tests and benchmarks compare against) from the npm registry into DIR.
# usage: fetch-sqlite-vec.sh VERSION DIR
set -eu
version=$1; dir=$2
[ -f "$dir/vec0.so" ] && exit 0
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "sqlite-vec-linux-x64@$version" >/dev/null 2>&1 && tar xzf sqlite-vec-linux-x64-"$version".tgz)
cp "$tmp/package/vec0.so" "$dir/vec0.so"
echo "fetched sqlite-vec $version into $dir"
