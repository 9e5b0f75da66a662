#!/bin/sh
# Build a newer SQLite than the system's, so the tests also run vectordb
# inside it (LD_PRELOAD'ed under Debian's Python): features gated on the
# run-time version, such as LIMIT pushed to virtual tables (3.41+), get
# exercised. The amalgamation comes from the npm package better-sqlite3,
# which ships SQLite's sqlite3.c; nothing of it is committed.
# usage: fetch-sqlite-newer.sh BETTER_SQLITE3_VERSION OUT_DIR
set -eu
pkg_version=$1; out=$2
[ -f "$out/libsqlite3.so" ] && exit 0
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "better-sqlite3@$pkg_version" >/dev/null 2>&1 \
  && tar xzf "better-sqlite3-$pkg_version.tgz" package/deps/sqlite3)
# The same optional parts Debian's libsqlite3 has, so every symbol Python's
# _sqlite3 module uses comes from this one library.
${CC:-cc} -O1 -fPIC -shared -o "$out/libsqlite3.so.tmp" \
  -DSQLITE_THREADSAFE=1 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS5 \
  -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_ENABLE_DBSTAT_VTAB \
  "$tmp/package/deps/sqlite3/sqlite3.c" -lpthread -ldl -lm
mv "$out/libsqlite3.so.tmp" "$out/libsqlite3.so"
echo "built SQLite $(grep -m1 '#define SQLITE_VERSION ' "$tmp/package/deps/sqlite3/sqlite3.h" | awk '{print $3}') into $out"
