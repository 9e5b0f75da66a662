"""Same-run A/B of two builds of the extension on one index.

usage: /usr/bin/python3 bench/ab.py A.so B.so DATABASE [--rounds N] [--settings 16,64]
           [--dataset fashion-mnist] [--nq 1000]

Both builds search the same database (built by either; a newer build reads
older formats) through bench/sqlite_run, alternating A, B, A, B, ... for N
rounds, so that a load change on the shared machine hits both alike. Prints
each build's median QPS per ef_search setting, and the ratio A/B with the
range of the per-round ratios.
"""
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

SQLITE_RUN = "build/bench/sqlite_run"


def search(ext, db, data, settings, nq):
    out = subprocess.run([SQLITE_RUN, "search", f"ext={os.path.abspath(ext)}", f"db={db}",
                          f"queries={data['queries']}", f"truth={data['truth']}", f"truthk={data['truth_k']}",
                          f"dim={data['dim']}", f"nq={nq}", "repeats=1", "threads=1",
                          "settings=" + ",".join(map(str, settings)),
                          "sql=SELECT rowid FROM t WHERE e MATCH ?1 AND k = 10 AND ef_search = %d"],
                         capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["setting"]: (r["qps"], r["recall"]) for r in rows if "setting" in r}


def main():
    a, b, db = sys.argv[1:4]
    opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
    rounds = int(opts.get("--rounds", 5))
    settings = [int(x) for x in opts.get("--settings", "16,64").split(",")]
    nq = int(opts.get("--nq", 1000))
    data = datasets.prepare(opts.get("--dataset", "fashion-mnist"), ".cache/bench")
    runs = {a: [], b: []}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for r in range(rounds):
        for ext in (a, b) if r % 2 == 0 else (b, a):
            runs[ext].append(search(ext, db, data, settings, nq))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for s in settings:
        qa = [x[s][0] for x in runs[a]]
        qb = [x[s][0] for x in runs[b]]
        ratios = [x / y for x, y in zip(qa, qb)]
        print(f"ef_search={s}: A {statistics.median(qa):8.1f} QPS, B {statistics.median(qb):8.1f} QPS, "
              f"A/B {statistics.median(qa) / statistics.median(qb):.3f}x (rounds {min(ratios):.2f}x to "
              f"{max(ratios):.2f}x); recall A {runs[a][0][s][1]:.4f} B {runs[b][0][s][1]:.4f}")


if __name__ == "__main__":
    main()
