"""Serving scenario: readers on a warm index while another process commits.

usage: /usr/bin/python3 bench/serving.py [--ext ./vectordb] [--baseline EXT]
           [--dataset fashion-mnist|cosine-200k|mixture-1m] [--readers N]
           [--seconds S] [--intervals 0.1,0.01] [--rounds R]

On a data set of bench/datasets.py (default Fashion-MNIST 60,000 x 784; HNSW
m=16, ef_construction=100, cache_mb=4096, WAL, one file; built once into
.cache/bench/serving/), N reader threads, each with its own connection, run
KNN queries (k=10, ef_search=64) for S seconds: with nothing else running,
and while a writer process inserts and commits one row every INTERVAL
seconds, the phases interleaved R times. Prints, per phase, the median
queries/s and its ratio to the idle phase, the median p50 and p99 query
latency, the reader process's resident memory, the readers' graph-cache
statistics (vectordb_stats) and the share of a core the writer process used
(on this 2-core machine the writer's own work competes with the readers).
The writer warms its graph cache before the clock starts, as a long-lived
writer has. With --baseline, the same phases run with that build of the
extension too, in the same run, on a copy of the database it built.

The ratios, not the absolute figures, are what to compare: the machine is
shared.
"""
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

CACHE = ".cache/bench"
K, EF = 10, 64


def connect(ext, path):
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.enable_load_extension(True)
    db.load_extension(ext)
    db.enable_load_extension(False)
    return db


def build(ext, path, base, metric="l2"):
    if os.path.exists(path):
        return
    tmp = path + ".building"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(tmp + suffix):
            os.remove(tmp + suffix)
    db = connect(ext, tmp)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"CREATE VIRTUAL TABLE t USING vectordb(e float[{base.shape[1]}] distance_metric={metric} "
               "INDEXED BY hnsw(m=16, ef_construction=100))")
    db.execute("INSERT INTO t(t) VALUES ('cache_mb=4096')")
    t0 = time.time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(base)))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    os.rename(tmp, path)
    print(f"  built {path} in {time.time() - t0:.0f} s", flush=True)


def resident_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


WRITER = r"""
import os, sqlite3, sys, time
ext, path, interval, seconds, first = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
import numpy as np
vecs = np.load(sys.argv[6])
db = sqlite3.connect(path, isolation_level=None, timeout=30)
db.enable_load_extension(True); db.load_extension(ext)
# A long-lived writer has a warm graph cache: warm this one before the clock starts.
for v in vecs[:500]:
    db.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = 10", (v.tobytes(),)).fetchall()
print("ready", flush=True)
t0 = os.times()
end = time.time() + seconds; i = 0; nxt = time.time()
while time.time() < end:
    db.execute("INSERT INTO t(rowid, e) VALUES (?, ?)", (first + i, vecs[i % len(vecs)].tobytes()))
    i += 1
    nxt += interval
    delay = nxt - time.time()
    if delay > 0:
        time.sleep(delay)
t1 = os.times()
print(i, (t1.user - t0.user) + (t1.system - t0.system), flush=True)
"""


def phase(ext, path, queries, readers, seconds, interval, vec_file, first_rowid):
    conns = [connect(ext, path) for _ in range(readers)]
    for c in conns:                             # warm: every reader's cache holds its walk
        for q in queries[:300]:
            c.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = ? AND ef_search = ?", (q.tobytes(), K, EF)).fetchall()
    counts = [0] * readers
    latencies = [[] for _ in range(readers)]
    stop = threading.Event()

    def run(i):
        c, n, lat = conns[i], 0, latencies[i]
        while not stop.is_set():
            q = queries[(n * readers + i) % len(queries)]
            t = time.perf_counter()
            c.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = ? AND ef_search = ?", (q.tobytes(), K, EF)).fetchall()
            lat.append(time.perf_counter() - t)
            n += 1
        counts[i] = n

    writer = None
    if interval:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, ext, path, str(interval), str(seconds + 1),
                                   str(first_rowid), vec_file], stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"   # warm, about to commit
    threads = [threading.Thread(target=run, args=(i,)) for i in range(readers)]
    t0 = time.time()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    rss_mib = resident_mib()
    written, writer_cpu = 0, 0.0
    if writer:
        fields = (writer.communicate()[0].split() or ["0", "0"])
        written, writer_cpu = int(fields[0]), float(fields[1])
    stats = {}
    try:
        for k, v in conns[0].execute("SELECT key, value FROM vectordb_stats('t') WHERE \"column\" = 'e'"):
            stats[k] = v
    except sqlite3.OperationalError:
        pass                                    # a build without vectordb_stats
    for c in conns:
        c.close()
    if written:
        db = connect(ext, path)
        db.execute("DELETE FROM t WHERE rowid >= ?", (first_rowid,))
        db.close()
    stats["writer_cpu_share"] = round(writer_cpu / elapsed, 2)
    lat = sorted(x for per in latencies for x in per) or [0.0]
    stats["p50_ms"] = lat[len(lat) // 2] * 1000
    stats["p99_ms"] = lat[min(len(lat) - 1, (len(lat) * 99) // 100)] * 1000
    stats["rss_mib"] = rss_mib
    return sum(counts) / elapsed, written, stats


def scenario(name, ext, path, queries, args, vec_file):
    """Idle and writer phases interleaved, `rounds` times: a load change on
    the shared machine hits every phase alike; medians are reported."""
    print(f"\n== {name} ({ext})", flush=True)
    intervals = [0] + args["intervals"]
    qps = {iv: [] for iv in intervals}
    lat = {iv: ([], [], []) for iv in intervals}
    last = {}
    for r in range(args["rounds"]):
        for iv in intervals:
            q, written, st = phase(ext, path, queries, args["readers"], args["seconds"], iv, vec_file, 10_000_000)
            qps[iv].append(q)
            for j, key in enumerate(("p50_ms", "p99_ms", "rss_mib")):
                lat[iv][j].append(st[key])
            last[iv] = (written, st)

    def figures(iv):
        p50, p99, rss = (statistics.median(x) for x in lat[iv])
        return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, reader process {rss:.0f} MiB"
    idle = statistics.median(qps[0])
    print(f"  idle: {idle:9.1f} queries/s  ({args['readers']} reader(s); rounds "
          + ", ".join(f"{q:.0f}" for q in qps[0]) + f"); {figures(0)}", flush=True)
    out = {"idle": idle}
    for iv in args["intervals"]:
        med = statistics.median(qps[iv])
        out[iv] = med
        written, st = last[iv]
        extra = ", ".join(f"{k} {v}" for k, v in st.items()
                          if k in ("full_reloads", "refreshes", "refreshed_nodes", "writer_cpu_share"))
        print(f"  writer commits every {iv * 1000:.0f} ms ({written} commits in the last round): {med:9.1f} "
              f"queries/s = {med / idle:.2f}x idle  (rounds " + ", ".join(f"{q:.0f}" for q in qps[iv])
              + f"); {figures(iv)}  [{extra or 'no vectordb_stats'}]", flush=True)
    return out


def main():
    args = {"ext": "./vectordb", "baseline": None, "readers": 1, "seconds": 5.0, "intervals": [0.1, 0.01],
            "rounds": 3, "dataset": "fashion-mnist"}
    i = 1
    while i < len(sys.argv):
        a = sys.argv[i]
        if a in ("--ext", "--baseline", "--readers", "--seconds", "--intervals", "--rounds", "--dataset"):
            args[a[2:]] = sys.argv[i + 1]
            i += 2
        else:
            sys.exit(__doc__)
    args["readers"], args["seconds"], args["rounds"] = int(args["readers"]), float(args["seconds"]), int(args["rounds"])
    if isinstance(args["intervals"], str):
        args["intervals"] = [float(x) for x in args["intervals"].split(",")]
    import numpy as np
    name = args["dataset"]
    data = datasets.prepare(name, CACHE)
    base = np.fromfile(data["base"], dtype="<f4").reshape(-1, data["dim"])
    all_queries = np.fromfile(data["queries"], dtype="<f4").reshape(-1, data["dim"])
    queries = all_queries[:1000]
    out_dir = os.path.join(CACHE, "serving")
    os.makedirs(out_dir, exist_ok=True)
    vec_file = os.path.join(out_dir, f"writer-vectors-{name}.npy")
    # The writer inserts vectors the table does not hold: the queries after
    # the first 1,000 where there are enough, else the base rows, slightly moved.
    extra = all_queries[1000:3000]
    if len(extra) < 2000:
        rng = np.random.default_rng(1)
        extra = base[:2000] + rng.normal(0, 0.01 * float(np.std(base)), (2000, base.shape[1])).astype(np.float32)
    np.save(vec_file, extra.astype(np.float32))
    runs = [("vectordb", os.path.abspath(args["ext"]))]
    if args["baseline"]:
        runs.append(("baseline", os.path.abspath(args["baseline"])))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{name}: {data['dim']}-d, {len(base)} rows, metric {data['metric']}, {args['readers']} reader thread(s)")
    for name, ext in runs:
        # Built once per role and kept (delete it to rebuild): any build reads
        # the tables of its own format and older ones.
        prefix = "fashion" if args["dataset"] == "fashion-mnist" else args["dataset"]
        path = os.path.join(out_dir, f"{prefix}-{name}.db")
        build(ext, path, base, data["metric"])
        scenario(name, ext, path, queries, args, vec_file)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
