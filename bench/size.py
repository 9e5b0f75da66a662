"""Size on disk of an HNSW table, per shadow table, for one or more builds.

usage: /usr/bin/python3 bench/size.py [--rows N] [--dim D] EXTENSION [EXTENSION ...]

Each build of the extension (a path to a vectordb.so; an older build is how
a format change is measured) builds the same table: N rows (default
100,000) from mixture-1m's generator (bench/datasets.py: Gaussian mixture,
1,000 centres, sigma 0.3, seed 42) at D dimensions (default 128),
M=16, ef_construction=200, one transaction, as bench/run.py builds. The
builds run one after the other. Prints the file's size against the raw
float32 vectors, the build time, and from SQLite's dbstat each table's and
index's size and the share of its pages left unused.
"""
import os
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402
import numpy as np  # noqa: E402


def build(ext, path, base):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(os.path.abspath(ext))
    db.execute(f"CREATE VIRTUAL TABLE t USING vectordb(e float[{base.shape[1]}] "
               "INDEXED BY hnsw(m=16, ef_construction=200))")
    db.execute("INSERT INTO t(t) VALUES ('cache_mb=4096')")
    db.execute("PRAGMA cache_size=-1048576")
    t0 = time.time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", ((i + 1, base[i].tobytes()) for i in range(len(base))))
    db.execute("COMMIT")
    seconds = time.time() - t0
    fmt = db.execute("SELECT value FROM t_info WHERE key = 'format'").fetchone()[0]
    db.close()
    return seconds, fmt


def main(argv):
    rows, dim, exts = 100_000, 128, []
    i = 1
    while i < len(argv):
        if argv[i] in ("--rows", "--dim"):
            if argv[i] == "--rows":
                rows = int(argv[i + 1])
            else:
                dim = int(argv[i + 1])
            i += 2
        else:
            exts.append(argv[i])
            i += 1
    if not exts:
        sys.exit(__doc__)
    base, _ = datasets._mixture(rows, 1, dim, 42)
    base = np.ascontiguousarray(base, dtype=np.float32)
    raw = base.nbytes
    with tempfile.TemporaryDirectory(prefix="vectordb-size-") as tmp:
        for n, ext in enumerate(exts):
            path = os.path.join(tmp, f"{n}.db")
            seconds, fmt = build(ext, path, base)
            size = os.path.getsize(path)
            print(f"{ext}: format {fmt}, {rows:,} x {dim} built in {seconds:.1f} s; "
                  f"file {size / 2**20:.1f} MiB = {size / raw:.3f}x the raw vectors")
            db = sqlite3.connect(path)
            for name, mib, unused in db.execute(
                    "SELECT name, sum(pgsize) / 1048576.0, sum(unused) * 100.0 / sum(pgsize) FROM dbstat "
                    "GROUP BY name ORDER BY 2 DESC"):
                if mib >= 0.01:
                    print(f"    {name:42s} {mib:8.2f} MiB  {unused:4.1f}% unused")
            db.close()


if __name__ == "__main__":
    main(sys.argv)
