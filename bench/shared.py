"""Many connections in one process: memory, a new connection's first query,
and queries from two threads.

usage: /usr/bin/python3 bench/shared.py [--ext ./vectordb] [--baseline EXT]
           [--connections 8] [--seconds S] [--rounds R]

On the serving scenario's database (Fashion-MNIST 60,000 x 784, HNSW m=16,
ef_construction=100, WAL; bench/serving.py builds it into
.cache/bench/serving/), each measurement runs in a fresh process:
  - memory: the growth of the process's resident set from before the first
    connection to after 1, and after N, connections each ran 300 warming
    queries (k=10, ef_search=64); the ratio N/1 is what the shared index
    is for;
  - first query: with one warm connection open, a new connection is
    opened and its first query timed (the median of 5 new connections);
  - threads: queries/s of 1 thread, then of 2 threads each with its own
    connection, after warming, for S seconds each; the ratio 2/1;
  - writer: on a copy of the database, one connection runs 300 queries,
    then 300 single-row inserts (one transaction each) and 300 more; the
    CPU time per insert of each batch (the first batch warms the writer's
    private cache, the second is its steady state).
With --baseline the same runs use that build too, interleaved round by
round, each build on its own copy of the database. Ratios within a build,
and between builds in the same run, are what to compare: the machine is
shared.
"""
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402
import serving   # noqa: E402

CACHE = ".cache/bench"

CHILD = r"""
import json, os, sqlite3, statistics, sys, threading, time
import numpy as np
mode, ext, path, qfile, n, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
queries = np.load(qfile)
SQL = "SELECT rowid FROM t WHERE e MATCH ? AND k = 10 AND ef_search = 64"

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

def connect():
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.enable_load_extension(True); db.load_extension(ext); db.enable_load_extension(False)
    return db

def warm(db):
    for q in queries[:300]:
        db.execute(SQL, (q.tobytes(),)).fetchall()

out = {}
if mode == "memory":
    r0 = rss()
    conns = [connect()]
    warm(conns[0])
    out["one"] = rss() - r0
    for _ in range(n - 1):
        conns.append(connect())
        warm(conns[-1])
    out["many"] = rss() - r0
elif mode == "first":
    keep = connect()
    warm(keep)
    times = []
    for i in range(5):
        db = connect()
        t0 = time.perf_counter()
        db.execute(SQL, (queries[500 + i].tobytes(),)).fetchall()
        times.append(time.perf_counter() - t0)
        db.close()
    out["first_ms"] = statistics.median(times) * 1000
elif mode == "writer":
    import shutil
    copy = path + ".writer"
    for suffix in ("", "-wal"):
        if os.path.exists(path + suffix):
            shutil.copy(path + suffix, copy + suffix)
        elif os.path.exists(copy + suffix):
            os.remove(copy + suffix)
    path = copy
    db = connect()
    warm(db)
    rng = np.random.default_rng(5)
    for batch in ("writer_first_ms", "writer_next_ms"):
        t0 = time.process_time()
        for i in range(300):
            v = queries[rng.integers(len(queries))] + rng.normal(0, 1, queries.shape[1]).astype(np.float32)
            db.execute("INSERT INTO t(rowid, e) VALUES (?, ?)", (20_000_000 + (batch == "writer_next_ms") * 300 + i, v.tobytes()))
        out[batch] = (time.process_time() - t0) / 300 * 1000
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(copy + suffix):
            os.remove(copy + suffix)
elif mode == "threads":
    def qps(nthreads):
        conns = [connect() for _ in range(nthreads)]
        for c in conns:
            warm(c)
        counts = [0] * nthreads
        stop = threading.Event()
        def run(i):
            c, k = conns[i], 0
            while not stop.is_set():
                c.execute(SQL, (queries[(k * 7 + i) % len(queries)].tobytes(),)).fetchall()
                k += 1
            counts[i] = k
        ts = [threading.Thread(target=run, args=(i,)) for i in range(nthreads)]
        t0 = time.time()
        for t in ts: t.start()
        time.sleep(seconds)
        stop.set()
        for t in ts: t.join()
        el = time.time() - t0
        for c in conns: c.close()
        return sum(counts) / el
    out["qps1"] = qps(1)
    out["qps2"] = qps(2)
print(json.dumps(out), flush=True)
"""


def child(mode, ext, path, qfile, n, seconds):
    r = subprocess.run([sys.executable, "-c", CHILD, mode, ext, path, qfile, str(n), str(seconds)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{mode} run failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    args = {"ext": "./vectordb", "baseline": None, "connections": "8", "seconds": "5", "rounds": "3"}
    i = 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a in ("--ext", "--baseline", "--connections", "--seconds", "--rounds") and i + 1 < len(sys.argv):
            args[a[2:]] = sys.argv[i + 1]
            i += 2
        else:
            sys.exit(__doc__)
    n, seconds, rounds = int(args["connections"]), float(args["seconds"]), int(args["rounds"])
    import numpy as np
    data = datasets.prepare("fashion-mnist", CACHE)
    base = np.fromfile(data["base"], dtype="<f4").reshape(-1, data["dim"])
    queries = np.fromfile(data["queries"], dtype="<f4").reshape(-1, data["dim"])[:1000]
    out_dir = os.path.join(CACHE, "serving")
    os.makedirs(out_dir, exist_ok=True)
    qfile = os.path.join(out_dir, "shared-queries.npy")
    np.save(qfile, queries)
    runs = [("vectordb", os.path.abspath(args["ext"]))]
    if args["baseline"]:
        runs.append(("baseline", os.path.abspath(args["baseline"])))
    paths = {}
    for name, ext in runs:
        paths[name] = os.path.join(out_dir, f"fashion-{name}.db")
        serving.build(ext, paths[name], base)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    res = {name: {"mem_one": [], "mem_many": [], "first_ms": [], "qps1": [], "qps2": [],
                  "writer_first_ms": [], "writer_next_ms": []} for name, _ in runs}
    for r in range(rounds):
        for name, ext in runs:
            m = child("memory", ext, paths[name], qfile, n, seconds)
            f = child("first", ext, paths[name], qfile, n, seconds)
            t = child("threads", ext, paths[name], qfile, n, seconds)
            w = child("writer", ext, paths[name], qfile, n, seconds)
            for key in ("writer_first_ms", "writer_next_ms"):
                res[name][key].append(w[key])
            res[name]["mem_one"].append(m["one"])
            res[name]["mem_many"].append(m["many"])
            res[name]["first_ms"].append(f["first_ms"])
            res[name]["qps1"].append(t["qps1"])
            res[name]["qps2"].append(t["qps2"])
            print(f"  round {r + 1} {name}: memory 1 conn {m['one'] / 2**20:.0f} MiB, {n} conns "
                  f"{m['many'] / 2**20:.0f} MiB; first query {f['first_ms']:.1f} ms; "
                  f"{t['qps1']:.0f} / {t['qps2']:.0f} queries/s (1 / 2 threads); insert CPU "
                  f"{w['writer_first_ms']:.2f} then {w['writer_next_ms']:.2f} ms", flush=True)
    for name, _ in runs:
        x = res[name]
        one, many = statistics.median(x["mem_one"]), statistics.median(x["mem_many"])
        q1, q2 = statistics.median(x["qps1"]), statistics.median(x["qps2"])
        print(f"{name}: memory {n} connections / 1 = {many / one:.2f}x ({many / 2**20:.0f} / {one / 2**20:.0f} MiB); "
              f"new connection's first query {statistics.median(x['first_ms']):.1f} ms; "
              f"2 threads / 1 = {q2 / q1:.2f}x ({q2:.0f} / {q1:.0f} queries/s); insert CPU after 300 queries "
              f"{statistics.median(x['writer_first_ms']):.2f} ms, then {statistics.median(x['writer_next_ms']):.2f} ms"
              f"  [medians of {rounds}]")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
