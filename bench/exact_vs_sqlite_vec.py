"""Exact KNN and insert speed: vectordb tables against sqlite-vec's vec0, same
data, same machine, same run; prints ratios and checks the results agree.

usage: /usr/bin/python3 bench/exact_vs_sqlite_vec.py [--quick]

Data sets:
  fashion  Fashion-MNIST from Debian's dataset-fashion-mnist: 60,000 x 784 base
           vectors (raw pixels as float32), test images as queries, L2.
  mixture  1,000,000 x 128 float32 Gaussian mixture (1,000 clusters, seed 42),
           queries drawn the same way (200,000 rows with --quick).
Both systems use in-memory databases, insert in one transaction, and answer
one query at a time on one thread, k = 10; each query set is timed 3 times
and the median taken.
"""
import os
import sqlite3
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasets import fashion, mixture  # noqa: E402

VECTORDB = "./vectordb"
SQLITE_VEC = ".cache/sqlite-vec-0.1.9/vec0"








def run_system(ext, module, base, queries):
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(ext)
    db.execute(f"CREATE VIRTUAL TABLE t USING {module}(embedding float[{base.shape[1]}])")
    t0 = time.perf_counter()
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(rowid, embedding) VALUES (?, ?)",
                   ((i + 1, base[i].tobytes()) for i in range(len(base))))
    db.execute("COMMIT")
    insert_s = time.perf_counter() - t0
    sql = "SELECT rowid, distance FROM t WHERE embedding MATCH ? AND k = 10"
    blobs = [q.tobytes() for q in queries]
    db.execute(sql, (blobs[0],)).fetchall()          # warm-up
    timings, results = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        results = [db.execute(sql, (b,)).fetchall() for b in blobs]
        timings.append(time.perf_counter() - t0)
    db.close()
    return {"insert_rows_s": len(base) / insert_s, "qps": len(blobs) / statistics.median(timings),
            "results": results}


def compare(name, base, queries):
    print(f"\n{name}: {base.shape[0]:,} x {base.shape[1]} base vectors, {len(queries)} queries")
    ours = run_system(VECTORDB, "vectordb", base, queries)
    peer = run_system(SQLITE_VEC, "vec0", base, queries)
    for label, r in (("vectordb", ours), ("sqlite-vec 0.1.9", peer)):
        print(f"  {label:17s} insert {r['insert_rows_s']:>10,.0f} rows/s   exact KNN {r['qps']:8.2f} QPS"
              f"  ({1000 / r['qps']:.1f} ms/query)")
    same = sum([a[0] for a in x] == [b[0] for b in y] for x, y in zip(ours["results"], peer["results"]))
    print(f"  identical top-10 rowids: {same}/{len(queries)}")
    print(f"  ratio vectordb/sqlite-vec: exact KNN QPS {ours['qps'] / peer['qps']:.2f}x, "
          f"insert rows/s {ours['insert_rows_s'] / peer['insert_rows_s']:.2f}x")
    return same == len(queries)


def main():
    quick = "--quick" in sys.argv
    ok = compare("Fashion-MNIST", *fashion(100 if quick else 300))
    ok &= compare("Gaussian mixture", *mixture(200_000 if quick else 1_000_000, 20))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
