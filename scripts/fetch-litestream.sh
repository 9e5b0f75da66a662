#!/bin/sh
# Fetch the Litestream binary (used by tests/test_backup.py to replicate and
# restore a database) from the npm registry into DIR. The package
# @flydotio/litestream-linux-x64 ships Litestream's release binary; its
# version 1.0.1 holds Litestream v0.3.13.
# usage: fetch-litestream.sh PACKAGE-VERSION DIR
set -eu
version=$1; dir=$2
[ -x "$dir/litestream" ] && exit 0
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@flydotio/litestream-linux-x64@$version" >/dev/null 2>&1 \
   && tar xzf flydotio-litestream-linux-x64-"$version".tgz)
cp "$tmp/package/litestream" "$dir/litestream.tmp"
chmod 755 "$dir/litestream.tmp"
"$dir/litestream.tmp" version >/dev/null
mv "$dir/litestream.tmp" "$dir/litestream"
echo "fetched litestream $("$dir/litestream" version) (npm @flydotio/litestream-linux-x64@$version) into $dir"
