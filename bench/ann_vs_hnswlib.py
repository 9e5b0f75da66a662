"""vectordb's HNSW index against hnswlib, same data, same parameters, same
machine, same run; prints recall-vs-QPS for both and the ratios.

usage: /usr/bin/python3 bench/ann_vs_hnswlib.py [--big] [--queries N]

Data: Fashion-MNIST from Debian's dataset-fashion-mnist (60,000 x 784 base,
test images as queries, L2); with --big also a 1,000,000 x 128 Gaussian
mixture (1,000 clusters, seed 42). Both systems: M=16, ef_construction=200,
one thread, one query at a time, k=10; recall@10 against exact top-10
computed with numpy. vectordb runs through SQL (Debian's Python sqlite3) on
an in-memory database with a graph cache budget large enough for the whole
graph (cache_mb=4096); hnswlib through bench/hnswlib_run.cpp, compiled with
-O3 -march=native. Also reported: vectordb's exact search (ef_search = 0) on
a query subset, build time, database size and peak RSS.
"""
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasets import fashion, mixture  # noqa: E402

VECTORDB = "./vectordb"
HNSWLIB_RUN = "build/bench/hnswlib_run"
EFS = [10, 16, 24, 32, 48, 64, 100]
M, EFC = 16, 200






def exact_top10(base, queries):
    """0-based ids of the 10 nearest base rows per query (L2), in blocks."""
    norms = (base.astype(np.float64) ** 2).sum(axis=1)
    out = np.empty((len(queries), 10), dtype=np.int32)
    for s in range(0, len(queries), 100):
        q = queries[s:s + 100].astype(np.float64)
        d = norms[None, :] - 2.0 * q @ base.T.astype(np.float64)
        part = np.argpartition(d, 10, axis=1)[:, :10]
        for i in range(len(q)):
            row = part[i][np.argsort(d[i, part[i]], kind="stable")]
            out[s + i] = row
    return out


def run_vectordb(base, queries, truth, n_exact):
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(VECTORDB)
    dim = base.shape[1]
    db.execute(f"CREATE VIRTUAL TABLE t USING vectordb(e float[{dim}] "
               f"INDEXED BY hnsw(m={M}, ef_construction={EFC}))")
    # The whole graph fits in memory, as hnswlib's does: a build that
    # overflows the cache budget flushes and reloads nodes (see README).
    db.execute("INSERT INTO t(t) VALUES ('cache_mb=4096')")
    t0 = time.perf_counter()
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", ((i, base[i].tobytes()) for i in range(len(base))))
    db.execute("COMMIT")
    build = time.perf_counter() - t0
    pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    rows = [{"system": "vectordb", "build_s": build, "rows": len(base), "db_bytes": pages}]
    blobs = [q.tobytes() for q in queries]
    for ef in EFS:
        sql = f"SELECT rowid FROM t WHERE e MATCH ? AND k = 10 AND ef_search = {ef}"
        db.execute(sql, (blobs[0],)).fetchall()
        lat, hits = [], 0
        t_all = time.perf_counter()
        for qi, b in enumerate(blobs):
            t = time.perf_counter()
            got = db.execute(sql, (b,)).fetchall()
            lat.append(time.perf_counter() - t)
            hits += len({r[0] for r in got} & set(truth[qi].tolist()))
        total = time.perf_counter() - t_all
        lat.sort()
        rows.append({"system": "vectordb", "ef": ef, "recall": hits / (10 * len(blobs)),
                     "qps": len(blobs) / total, "p50_ms": lat[len(lat) // 2] * 1e3,
                     "p99_ms": lat[(len(lat) * 99) // 100] * 1e3})
    sql = "SELECT rowid FROM t WHERE e MATCH ? AND k = 10 AND ef_search = 0"
    t_all = time.perf_counter()
    for b in blobs[:n_exact]:
        db.execute(sql, (b,)).fetchall()
    rows.append({"system": "vectordb-exact", "qps": n_exact / (time.perf_counter() - t_all)})
    rows.append(cold_start(db, blobs[1]))
    db.close()
    return rows


def cold_start(db, query):
    """Copy the database to a file, then time a new connection: open, load
    the extension, answer one KNN query (nothing cached yet)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cold.db")
        disk = sqlite3.connect(path)
        db.backup(disk)
        disk.close()
        t0 = time.perf_counter()
        fresh = sqlite3.connect(path)
        fresh.enable_load_extension(True)
        fresh.load_extension(VECTORDB)
        fresh.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = 10", (query,)).fetchall()
        first = time.perf_counter() - t0
        fresh.close()
        return {"system": "vectordb-cold", "first_query_s": first, "file_bytes": os.path.getsize(path)}


def run_hnswlib(base, queries, truth):
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, n) for n in ("base.f32", "queries.f32", "truth.i32")]
        base.astype("<f4").tofile(paths[0])
        queries.astype("<f4").tofile(paths[1])
        truth.astype("<i4").tofile(paths[2])
        out = subprocess.run([HNSWLIB_RUN, *paths, str(base.shape[1]), str(M), str(EFC),
                              ",".join(map(str, EFS))], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def qps_at(rows, target):
    """QPS of the smallest ef whose recall reaches target, or None."""
    ok = [r for r in rows if "ef" in r and r["recall"] >= target]
    return (min(ok, key=lambda r: r["ef"])["qps"], min(ok, key=lambda r: r["ef"])["ef"]) if ok else (None, None)


def report(name, base, queries):
    print(f"\n== {name}: {len(base):,} x {base.shape[1]} base, {len(queries)} queries, M={M}, "
          f"ef_construction={EFC}, k=10", flush=True)
    truth = exact_top10(base, queries)
    ours = run_vectordb(base, queries, truth, n_exact=min(50, len(queries)))
    peer = run_hnswlib(base, queries, truth)
    b_ours = next(r for r in ours if "build_s" in r)
    b_peer = next(r for r in peer if "build_s" in r)
    print(f"{'system':10s} {'ef':>5s} {'recall@10':>10s} {'QPS':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for rows in (ours, peer):
        for r in rows:
            if "ef" in r:
                print(f"{r['system']:10s} {r['ef']:5d} {r['recall']:10.4f} {r['qps']:9.0f} "
                      f"{r['p50_ms']:8.3f} {r['p99_ms']:8.3f}")
    exact = next(r for r in ours if r["system"] == "vectordb-exact")["qps"]
    cold = next(r for r in ours if r["system"] == "vectordb-cold")
    print(f"cold start: open the {cold['file_bytes'] / 2 ** 20:.0f} MiB database file and answer the first "
          f"query in {cold['first_query_s'] * 1e3:.0f} ms")
    raw_mb = base.nbytes / 2 ** 20
    print(f"build: vectordb {b_ours['build_s']:.1f} s ({len(base) / b_ours['build_s']:.0f} rows/s), "
          f"hnswlib {b_peer['build_s']:.1f} s ({len(base) / b_peer['build_s']:.0f} rows/s); "
          f"ratio vectordb/hnswlib build throughput {b_peer['build_s'] / b_ours['build_s']:.2f}x")
    print(f"database {b_ours['db_bytes'] / 2 ** 20:.0f} MiB for {raw_mb:.0f} MiB of raw vectors; "
          f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for target in (0.95, 0.99):
        q1, e1 = qps_at(ours, target)
        q2, e2 = qps_at(peer, target)
        if q1 and q2:
            print(f"at recall >= {target}: vectordb {q1:.0f} QPS (ef={e1}), hnswlib {q2:.0f} QPS (ef={e2}); "
                  f"ratio vectordb/hnswlib {q1 / q2:.2f}x; vectordb HNSW / vectordb exact {q1 / exact:.0f}x "
                  f"(exact {exact:.1f} QPS)")
        else:
            print(f"at recall >= {target}: not reached by {'vectordb' if not q1 else 'hnswlib'} in ef {EFS}")


def main():
    if not os.path.exists(HNSWLIB_RUN):
        sys.exit(f"{HNSWLIB_RUN} is missing: run through 'make bench-hnsw'")
    nq = 1000
    if "--queries" in sys.argv:
        nq = int(sys.argv[sys.argv.index("--queries") + 1])
    report("Fashion-MNIST", *fashion(nq))
    if "--big" in sys.argv:
        report("Gaussian mixture", *mixture(1_000_000, nq))


if __name__ == "__main__":
    main()
