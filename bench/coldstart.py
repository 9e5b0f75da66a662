"""A new process's first query, on one or more index files, interleaved.

usage: /usr/bin/python3 bench/coldstart.py EXTENSION DATABASE [DATABASE ...]
           [--dataset fashion-mnist] [--rounds 3] [--ef 64] [--baseline EXT]

Each round runs bench/sqlite_run once per database, in turn: the process
opens the database, loads the extension and answers the data set's first
query at ef_search EF (64 is the tables' default; the OS page cache warm,
as bench/run.py's "cold start"). With --baseline, that build answers too,
in the same rounds. Prints, per build and file, the file's chunk size
(from its layout) and the median and range of the first-query times.
Files of the same data built with different chunk_size values are how the
chunk default was chosen, for example:

  build/bench/sqlite_run build ext=$PWD/vectordb.so db=/tmp/c64.db \\
      base=.cache/bench/data/mixture-1m/base.f32 dim=128 \\
      "setup=CREATE VIRTUAL TABLE t USING vectordb(e float[128] INDEXED BY hnsw(m=16, ef_construction=200), chunk_size=64)"
"""
import json
import os
import sqlite3
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

SQLITE_RUN = "build/bench/sqlite_run"


def first_query(ext, db, data, ef):
    out = subprocess.run([SQLITE_RUN, "search", f"ext={os.path.abspath(ext)}", f"db={db}",
                          f"queries={data['queries']}", f"truth={data['truth']}", f"truthk={data['truth_k']}",
                          f"dim={data['dim']}", "nq=1", "repeats=1", "threads=1", f"settings={ef}",
                          "sql=SELECT rowid FROM t WHERE e MATCH ?1 AND k = 10 AND ef_search = %d"],
                         capture_output=True, text=True, check=True).stdout
    return next(json.loads(line)["cold_s"] for line in out.splitlines() if '"cold_s"' in line)


def main(argv):
    args, opts, i = [], {"dataset": "fashion-mnist", "rounds": "3", "ef": "64"}, 1
    while i < len(argv):
        if argv[i].startswith("--"):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) < 2:
        sys.exit(__doc__)
    exts = [args[0]] + ([opts["baseline"]] if "baseline" in opts else [])
    dbs = args[1:]
    data = datasets.prepare(opts["dataset"], ".cache/bench", log=lambda m: None)
    times = {(ext, db): [] for ext in exts for db in dbs}
    for _ in range(int(opts["rounds"])):
        for ext in exts:
            for db in dbs:
                times[ext, db].append(first_query(ext, db, data, int(opts["ef"])))
    for ext in exts:
        for db in dbs:
            layout = sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute(
                "SELECT value FROM t_info WHERE key = 'layout'").fetchone()[0]
            t = sorted(times[ext, db])
            print(f"{ext} {db}: {layout.split(';')[0]}; first query median {statistics.median(t) * 1e3:.0f} ms "
                  f"(range {t[0] * 1e3:.0f} to {t[-1] * 1e3:.0f}, {len(t)} rounds)")


if __name__ == "__main__":
    main(sys.argv)
