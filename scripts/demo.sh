#!/bin/sh
# make demo: prepare Fashion-MNIST as an SQLite database (once), then load
# vectordb into the sqlite3 shell and answer nearest-neighbour queries.
set -eu
db=build/demo/fashion.db
if [ ! -f "$db" ]; then
  mkdir -p build/demo
  echo "preparing $db from /usr/share/datasets/fashion-mnist ..."
  /usr/bin/python3 scripts/fashion_to_sqlite.py "$db.tmp"
  mv "$db.tmp" "$db"
fi
sqlite3 "$db" < sql/demo.sql
