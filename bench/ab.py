"""Same-run A/B of two builds of the extension on one index.

usage: /usr/bin/python3 bench/ab.py A.so B.so DATABASE [--rounds N] [--settings 16,64]
           [--dataset fashion-mnist] [--nq 1000] [--pass-seconds 1]
           [--build ROWS [--build-threads 1]]

Both builds search the same database (built by either; a newer build reads
older formats) through bench/sqlite_run, alternating A, B, A, B, ... for N
rounds (each round one timed pass per setting, repeating the queries for
--pass-seconds as bench/run.py does), so that a load change on the shared machine hits both alike. Prints
each build's median QPS per ef_search setting, and the ratio A/B with the
range of the per-round ratios, and each build's peak RSS (VmHWM of the search
process, the median over rounds: what the walks kept in memory for those
queries and settings). With --build ROWS, each round also builds an
index of the data set's first ROWS vectors with each build (M=16,
ef_construction=200, as bench/run.py; threads=1 unless --build-threads)
and compares the build times.
"""
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

SQLITE_RUN = "build/bench/sqlite_run"


def run_driver(args):
    """sqlite_run's stdout; on failure, exit naming the command and what it printed on stderr."""
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"ab.py: {' '.join(args[:2])} failed (exit {res.returncode}): {res.stderr.strip()}")
    return res.stdout


def search(ext, db, data, settings, nq, pass_s):
    out = run_driver([SQLITE_RUN, "search", f"ext={os.path.abspath(ext)}", f"db={db}",
                          f"queries={data['queries']}", f"truth={data['truth']}", f"truthk={data['truth_k']}",
                          f"dim={data['dim']}", f"nq={nq}", "repeats=1", "threads=1", f"pass_s={pass_s}",
                          "settings=" + ",".join(map(str, settings)),
                          "sql=SELECT rowid FROM t WHERE e MATCH ?1 AND k = 10 AND ef_search = %d"])
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    result = {r["setting"]: (r["qps"], r["recall"]) for r in rows if "setting" in r}
    result["rss"] = next((r["peak_rss_mb"] for r in rows if "peak_rss_mb" in r), float("nan"))
    return result


def build(ext, data, rows, out, threads):
    base = out + ".base.f32"
    if not os.path.exists(base):
        with open(data["base"], "rb") as f, open(base, "wb") as g:
            g.write(f.read(rows * data["dim"] * 4))
    if os.path.exists(out):
        os.remove(out)
    res = run_driver([SQLITE_RUN, "build", f"ext={os.path.abspath(ext)}", f"db={out}", f"base={base}",
                          f"dim={data['dim']}",
                          f"setup=CREATE VIRTUAL TABLE t USING vectordb(e float[{data['dim']}] "
                          f"INDEXED BY hnsw(m=16, ef_construction=200, threads={threads})); INSERT INTO t(t) VALUES ('cache_mb=4096');"
                          " PRAGMA cache_size=-1048576;"])
    os.remove(out)
    return next(json.loads(line)["build_s"] for line in res.splitlines() if '"build_s"' in line)


def main():
    a, b, db = sys.argv[1:4]
    if not os.path.exists(db):
        sys.exit(f"ab.py: no database {db} (build one with build/bench/sqlite_run build)")
    opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
    rounds = int(opts.get("--rounds", 5))
    settings = [int(x) for x in opts.get("--settings", "16,64").split(",")]
    nq = int(opts.get("--nq", 1000))
    pass_s = float(opts.get("--pass-seconds", 1.0))
    data = datasets.prepare(opts.get("--dataset", "fashion-mnist"), ".cache/bench")
    build_rows = int(opts.get("--build", 0))
    build_threads = int(opts.get("--build-threads", 1))
    runs = {a: [], b: []}
    builds = {a: [], b: []}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(rounds):
        for ext in (a, b) if r % 2 == 0 else (b, a):
            runs[ext].append(search(ext, db, data, settings, nq, pass_s))
            if build_rows:
                builds[ext].append(build(ext, data, build_rows, f"/tmp/vectordb-ab-{os.getpid()}.db",
                                            build_threads))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if build_rows:
        ta, tb = statistics.median(builds[a]), statistics.median(builds[b])
        ratios = [y / x for x, y in zip(builds[a], builds[b])]
        print(f"build of {build_rows:,} rows: A {ta:.1f} s, B {tb:.1f} s, throughput A/B {tb / ta:.3f}x "
              f"(rounds {min(ratios):.2f}x to {max(ratios):.2f}x)")
    for s in settings:
        qa = [x[s][0] for x in runs[a]]
        qb = [x[s][0] for x in runs[b]]
        ratios = [x / y for x, y in zip(qa, qb)]
        print(f"ef_search={s}: A {statistics.median(qa):8.1f} QPS, B {statistics.median(qb):8.1f} QPS, "
              f"A/B {statistics.median(qa) / statistics.median(qb):.3f}x (rounds {min(ratios):.2f}x to "
              f"{max(ratios):.2f}x); recall A {runs[a][0][s][1]:.4f} B {runs[b][0][s][1]:.4f}")
    ra, rb = statistics.median(x["rss"] for x in runs[a]), statistics.median(x["rss"] for x in runs[b])
    print(f"peak RSS of the search process: A {ra:,.0f} MiB, B {rb:,.0f} MiB, A/B {ra / rb:.2f}x")


if __name__ == "__main__":
    main()
