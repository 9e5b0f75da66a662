#!/bin/sh
# Measures what a loaded three-node cluster costs: loads ROWS rows of DIM
# float32 dimensions (HNSW-indexed) through /bulk, then prints the load
# time, the database size on the leader and each node's resident memory
# and data directory size. Loopback only; every node is killed on exit.
#
#   sh cluster/sizing.sh [ROWS] [DIM]        (make vectordb-node first)
set -eu
ROWS=${1:-20000}
DIM=${2:-128}
BIN=${BIN:-build/vectordb-node}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/vectordb-sizing-XXXXXX)
PIDS=""
cleanup() {
  for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
PORTS=$($PY -c '
import socket
ss=[socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
set -- $PORTS
R1=$1 H1=$2 R2=$3 H2=$4 R3=$5 H3=$6
TOKEN=sizing-token-0123456789
echo "$TOKEN rw" > "$TMP/tokens"
start() { # raft http dir [join]
  $BIN -address 127.0.0.1:$1 -http 127.0.0.1:$2 -dir "$TMP/$3" -tokens "$TMP/tokens" \
       -timeout 60s ${NODE_FLAGS:-} ${4:+-join 127.0.0.1:$4} >"$TMP/$3.log" 2>&1 &
  PIDS="$PIDS $!"
}
wait_health() {
  i=0
  until curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/health" >/dev/null; do
    i=$((i+1)); [ $i -gt 300 ] && { echo "node on $1 did not start"; exit 1; }
    sleep 0.1
  done
}
start $R1 $H1 n1; wait_health $H1
start $R2 $H2 n2 $R1; start $R3 $H3 n3 $R1; wait_health $H2; wait_health $H3
api() { curl -sS -H "Authorization: Bearer $TOKEN" -X POST "http://127.0.0.1:$H1/$1" -d @-; }
echo "{\"sql\":\"CREATE VIRTUAL TABLE items USING vectordb(embedding float[$DIM] INDEXED BY hnsw())\"}" | api sql >/dev/null
t0=$(date +%s.%N)
$PY - "$ROWS" "$DIM" "$TMP" <<'PYEOF'
import json, random, sys
rows, dim, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = random.Random(1)
step = 2000
for b in range(0, rows, step):
    body = {"table": "items", "columns": ["rowid", "embedding"],
            "rows": [[i + 1, [round(r.gauss(0, 1), 5) for _ in range(dim)]] for i in range(b, min(rows, b + step))]}
    open("%s/batch%06d.json" % (tmp, b), "w").write(json.dumps(body))
PYEOF
t1=$(date +%s.%N)
for f in "$TMP"/batch*.json; do out=$(api bulk < "$f"); echo "$out" | grep -q "\"rows\"" || { echo "load failed at $f: $out"; for l in "$TMP"/*.log; do echo "== $l"; tail -n 5 "$l"; done; ps -o pid,rss,stat,cmd -p $(echo $PIDS | tr " " ","); exit 1; }; done
t2=$(date +%s.%N)
echo '{"sql":"SELECT count(*), (SELECT page_count FROM pragma_page_count) * 4096 FROM items"}' | api sql
echo "rows $ROWS dim $DIM: /bulk load $(echo "$t2 - $t1" | bc) s"
for n in 1 2 3; do
  pid=$(echo $PIDS | cut -d' ' -f$n)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  du=$(du -sk "$TMP/n$n" | cut -f1)
  echo "node $n: RSS $((rss / 1024)) MiB, data directory $((du / 1024)) MiB"
done
# One /metrics scrape: its first read of the index figures runs
# vectordb_stats on the leader (every graph row and shadow-table page).
t3=$(date +%s.%N)
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$H1/metrics" | grep -E '^vectordb_(graph_nodes|graph_cache_bytes)'
t4=$(date +%s.%N)
echo "/metrics with the index figures read afresh: $(echo "$t4 - $t3" | bc) s"
