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
# A picture of what the queries found: test images next to their nearest
# training images through the index, and the filtered query (PIL).
png=build/demo/neighbours.png
/usr/bin/python3 scripts/demo_picture.py "$db" "$png" >/dev/null
echo
echo "Picture of test images and their nearest neighbours (through the index): $png"
