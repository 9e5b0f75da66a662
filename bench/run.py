"""The benchmark harness: every system on the same data, same machine, same run.

usage: /usr/bin/python3 bench/run.py [--quick | --smoke] [--datasets a,b,...]
           [--base F --queries F --metric l2|cosine --name NAME]
           [--out DIR] [--repeats N] [--pass-seconds S] [--threads N] [--rebuild[=SYSTEM,...]]
           [--systems SYSTEM,...]
           [--baseline EXTENSION]

Systems (each a separate driver process, so peak RSS is its own):
  vectordb         HNSW index, several ef_search values   bench/sqlite_run.c
                   (built with threads=1: one thread links the rows)
  vectordb-mt      the same, linked by --threads threads  (build only)
  vectordb-exact   the same table with ef_search = 0       bench/sqlite_run.c
  sqlite-vec       vec0 0.1.9 from npm, exact KNN          bench/sqlite_run.c
  hnswlib          Debian libhnswlib-dev, several ef       bench/hnswlib_run.cpp
  hnswlib-mt       the same, built on --threads threads    (build only)
  faiss-hnsw       Debian libfaiss-dev IndexHNSWFlat       bench/faiss_run.cpp
  faiss-flat       Debian libfaiss-dev IndexFlat, exact    bench/faiss_run.cpp
All HNSW systems use M=16, ef_construction=200; k=10; one query at a time;
recall@10 against the exact top-10 of bench/groundtruth. Each search
setting is timed `repeats` times (median; 5 by default); the threaded QPS
uses separate connections (SQLite systems) or a shared index (the
libraries). A timed pass goes over the queries as many times as fill
--pass-seconds (1 s in the full profile, by a second warm-up pass's time; at
least once): 2,000 queries take 0.1 s on Fashion-MNIST, and a pass that
short is decided by one hiccup of a shared host (two full runs put
vectordb at 1.63x and at 1.26x hnswlib there).

Interleaving: the load of a shared machine changes over minutes, so the ANN
systems (vectordb, vectordb-baseline, hnswlib, faiss-hnsw: several ef
settings) are not searched one after another. After every build of the
data set, each one's driver is started in `serve` mode and kept open;
for each setting every driver warms up, then the timed passes alternate
between them, one pass at a time, the first system rotating from round to
round (A B C, B C A, C A B, ...), first the single-thread passes, then the
threaded ones. A load change thus falls on every system alike, and the
same-run ratios hold. The exact systems run one after another (`search`
mode), as before. results.json says "interleaved": true.

Builds are cached under .cache/bench/index by a key of the data checksum,
the system's parameters, the SHA-256 of the driver (and extension)
binaries and the version of the Debian package the peer comes from, so a
re-run rebuilds only what changed (a new vectordb does not rebuild FAISS); a reused build reports
the time measured when it was made. --rebuild builds every system afresh
(and replaces its cached build), so that build-time ratios come from one
run: do that for results you publish; --rebuild=a,b only those systems.

--systems runs only those systems (for a quick look; published results
run them all).

--baseline EXTENSION adds "vectordb-baseline": the same table and queries
with another build of the extension (for example the main branch's), so a
change is measured against what it replaces in the same run; the summary
gives the ratios.

Writes DIR/RESULTS.md, DIR/results.json and DIR/<dataset>.png (recall vs
QPS, gnuplot); DIR defaults to bench/. The summary, with the ratios
against the peers, is printed and written into RESULTS.md.
"""
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import queue
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

CACHE = ".cache/bench"
SQLITE_RUN = "build/bench/sqlite_run"
HNSWLIB_RUN = "build/bench/hnswlib_run"
FAISS_RUN = "build/bench/faiss_run"
VECTORDB_EXT = "./vectordb.so"
BASELINE_EXT = None            # --baseline: another build to compare with
BUILD_THREADS = 2              # --threads: also hnswlib-mt's build threads
SQLITE_VEC_EXT = ".cache/sqlite-vec-0.1.9/vec0.so"
M, EFC = 16, 200
ANN = ("vectordb", "hnswlib", "faiss-hnsw")
EXACT = ("vectordb-exact", "sqlite-vec", "faiss-flat")
TARGETS = (0.90, 0.95, 0.99)

PROFILES = {
    # name: data sets, ef values, queries for ANN / exact systems.
    # The full profile's ef values are close together where recall 0.9 to
    # 0.99 is crossed on these data sets (ef 10 to 48): at a recall target
    # each system is credited with its fastest setting that reaches it, so
    # a coarse grid charges a system for the gap between its crossing and
    # the next value (on cosine 200k one system crossed 0.95 near ef 17 and
    # the other near 21.5, and both were measured at ef 24). Below k (10)
    # only vectordb's walk over codes narrows its beam (it returns the best
    # of its beam and the hits it let go); hnswlib searches with
    # max(ef, k) (hnswalg.h), so its points at 6 and 8 are its ef 10 again.
    "full": {"datasets": ["fashion-mnist", "cosine-200k", "mixture-1m"],
             "efs": [6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 100, 150, 200], "nq": 2000,
             "nq_exact": 100, "pass_s": 1.0},
    "quick": {"datasets": ["fashion-mnist"], "efs": [16, 32, 64, 128], "nq": 1000, "nq_exact": 50,
              "pass_s": 0.5},
    "smoke": {"datasets": ["tiny"], "efs": [16, 64], "nq": 100, "nq_exact": 100, "pass_s": 0.0},
}


def log(msg):
    print(msg, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def run_driver(argv):
    """Runs a driver; returns (JSON objects it printed, its peak RSS in MiB, error or None)."""
    # FAISS would otherwise start an OpenMP team inside each query thread.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # Only VmHWM is the driver's own peak (see benchReportRss in driver.h).
    rss = next((r["peak_rss_mb"] for r in rows if r.get("rss_source") == "VmHWM"), None)
    rows = [r for r in rows if "peak_rss_mb" not in r]
    if proc.returncode != 0 or not rows:
        return rows, rss, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return rows, rss, None


def systems_for(data):
    """Driver command lines for each system on one data set."""
    dim, metric = data["dim"], data["metric"]
    vdb_metric = {"l2": "l2", "cosine": "cosine"}[metric]
    knn = "SELECT rowid FROM t WHERE e MATCH ?1 AND k = 10"

    def vectordb(ext, threads=1):
        return {
            "driver": SQLITE_RUN, "binaries": [SQLITE_RUN, ext], "ext": ".db",
            "build": ["ext=" + ext,
                      f"setup=CREATE VIRTUAL TABLE t USING vectordb(e float[{dim}] distance_metric={vdb_metric} "
                      f"INDEXED BY hnsw(m={M}, ef_construction={EFC}, threads={threads})); "
                      "INSERT INTO t(t) VALUES ('cache_mb=4096'); PRAGMA cache_size=-1048576;"],
            "search": ["ext=" + ext, f"sql={knn} AND ef_search = %d"],
        }
    baseline = {"vectordb-baseline": vectordb(BASELINE_EXT)} if BASELINE_EXT else {}
    return {
        "vectordb": vectordb(VECTORDB_EXT),
        # The parallel build, for the build-throughput ratios (not searched).
        "vectordb-mt": {**vectordb(VECTORDB_EXT, BUILD_THREADS), "build_only": True},
        **baseline,
        "vectordb-exact": {"same_build_as": "vectordb", "driver": SQLITE_RUN,
                           "search": ["ext=" + VECTORDB_EXT, f"sql={knn} AND ef_search = 0 -- %d"]},
        "sqlite-vec": {
            "driver": SQLITE_RUN, "binaries": [SQLITE_RUN, SQLITE_VEC_EXT], "ext": ".db",
            "build": ["ext=" + SQLITE_VEC_EXT,
                      f"setup=CREATE VIRTUAL TABLE t USING vec0(e float[{dim}] distance_metric={vdb_metric}); "
                      "PRAGMA cache_size=-1048576;"],
            "search": ["ext=" + SQLITE_VEC_EXT, f"sql={knn} -- %d"],
        },
        "hnswlib": {
            "driver": HNSWLIB_RUN, "binaries": [HNSWLIB_RUN], "packages": ["libhnswlib-dev"], "ext": ".hnsw",
            "build": [f"metric={metric}", f"m={M}", f"efc={EFC}"],
            "search": [f"metric={metric}"],
        },
        # hnswlib's own multi-threaded build, for the build-throughput
        # ratios; its graph is searched like the single-threaded one's.
        "hnswlib-mt": {
            "driver": HNSWLIB_RUN, "binaries": [HNSWLIB_RUN], "packages": ["libhnswlib-dev"], "ext": ".hnsw",
            "build": [f"metric={metric}", f"m={M}", f"efc={EFC}", f"threads={BUILD_THREADS}"],
            "build_only": True,
        },
        "faiss-hnsw": {
            "driver": FAISS_RUN, "binaries": [FAISS_RUN], "packages": ["libfaiss-dev"], "ext": ".faiss",
            "build": ["kind=hnsw", f"metric={metric}", f"m={M}", f"efc={EFC}"],
            "search": [],
        },
        "faiss-flat": {
            "driver": FAISS_RUN, "binaries": [FAISS_RUN], "packages": ["libfaiss-dev"], "ext": ".faiss",
            "build": ["kind=flat", f"metric={metric}"],
            "search": [],
        },
    }


def package_version(name):
    """The installed version of a Debian package ("" if not installed)."""
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def build_system(name, spec, data, index_dir, rebuild=False):
    """Builds (or reuses) one system's index; returns (build record, index path)."""
    missing = [b for b in spec["binaries"] if not os.path.exists(b)]
    if missing:
        return {"missing": "not built: " + ", ".join(missing)}, None
    key = hashlib.sha256(json.dumps({"data": data["checksum"], "build": spec["build"],
                                     "bin": [sha256_file(b) for b in spec["binaries"]],
                                     "packages": [f"{p}={package_version(p)}" for p in spec.get("packages", [])]}
                                    ).encode()).hexdigest()[:16]
    path = os.path.join(index_dir, f"{name}-{key}{spec['ext']}")
    record_path = path + ".json"
    rebuild = rebuild is True or (isinstance(rebuild, list) and name in rebuild)
    if not rebuild and os.path.exists(path) and os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
        record["cached"] = True
        if not record.get("rss_vmhwm"):
            record["build_rss_mb"] = None     # measured by the old, wrong method

        log(f"  {name}: reusing the build of {record['when']} ({record['build_s']:.1f} s)")
        return record, path
    log(f"  {name}: building {data['n']:,} x {data['dim']} ...")
    arg = "db=" if spec["driver"] == SQLITE_RUN else "index="
    rows, rss, err = run_driver([spec["driver"], "build", f"base={data['base']}", f"dim={data['dim']}",
                                 arg + path, *spec["build"]])
    if err or not rows:
        return {"missing": f"build failed: {err}"}, None
    record = dict(rows[-1], build_rss_mb=rss, rss_vmhwm=True,
                  when=datetime.datetime.now().isoformat(timespec="seconds"))
    with open(record_path, "w") as f:
        json.dump(record, f)
    record["cached"] = False
    log(f"  {name}: built in {record['build_s']:.1f} s, {record['index_bytes'] / 2**20:.0f} MiB")
    return record, path


def search_system(name, spec, data, path, settings, nq, repeats, threads, pass_s):
    arg = "db=" if spec["driver"] == SQLITE_RUN else "index="
    rows, rss, err = run_driver([spec["driver"], "search", arg + path, f"queries={data['queries']}",
                                 f"truth={data['truth']}", f"truthk={data['truth_k']}", f"dim={data['dim']}",
                                 f"nq={nq}", f"repeats={repeats}", f"threads={threads}", f"pass_s={pass_s}",
                                 "settings=" + ",".join(map(str, settings)), *spec["search"]])
    if err:
        return {"missing": f"search failed: {err}"}
    cold = next((r["cold_s"] for r in rows if "cold_s" in r), None)
    points = [r for r in rows if "setting" in r]
    return {"cold_s": cold, "search_rss_mb": rss, "points": points, "nq": nq}


# How long a served driver may take to answer, in seconds: generous for 1M
# rows (a 2,000-query pass takes seconds, the warm-up at ef 200 up to a
# minute, loading an index from a cold page cache longer), short enough
# that a hung driver does not stall the run for good.
COLD_SAMPLES = 3               # drivers started per system for its cold start (median)
SERVE_TIMEOUT = {"start": 900, "setting": 600, "pass": 300, "tpass": 300, "done": 60, "exit": 120}


class ServeError(Exception):
    pass


class Served:
    """One driver in `serve` mode: commands in, one JSON line back each."""

    def __init__(self, name, argv):
        self.name = name
        self.lines = queue.Queue()
        self.stderr = tempfile.TemporaryFile(mode="w+")
        # FAISS would otherwise start an OpenMP team inside each query thread.
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, bufsize=1, env=env)
        # A reader thread, so that every wait for a line has a timeout.
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _stderr_tail(self):
        self.stderr.seek(0)
        lines = self.stderr.read().strip().splitlines()
        return lines[-1] if lines else ""

    def reply(self, key, timeout):
        """The next line, parsed, which must hold `key`; else ServeError."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ServeError(f"no answer in {timeout} s (waiting for {key})")
        if line is None:
            code = self.proc.wait()
            raise ServeError(self._stderr_tail() or f"exit {code} (waiting for {key})")
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise ServeError(f"unexpected output {line.strip()[:80]!r}")
        if "error" in obj:
            raise ServeError(" ".join(x for x in (str(obj["error"]), self._stderr_tail()) if x))
        if key not in obj:
            raise ServeError(f"unexpected output {line.strip()[:80]!r} (waiting for {key})")
        return obj

    def ask(self, command, key, timeout):
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.proc.wait()
            raise ServeError(self._stderr_tail() or f"exit {self.proc.returncode} (sending {command})")
        return self.reply(key, timeout)

    def finish(self):
        """Ends input; returns the driver's peak RSS in MiB (VmHWM), or ServeError."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rss = None
        deadline = time.time() + SERVE_TIMEOUT["exit"]
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise ServeError(f"did not exit in {SERVE_TIMEOUT['exit']} s")
            if line is None:
                break
            try:
                obj = json.loads(line)
            except ValueError:
                obj = {}
            # Only VmHWM is the driver's own peak (see benchReportRss in driver.h).
            if isinstance(obj, dict) and obj.get("rss_source") == "VmHWM":
                rss = obj["peak_rss_mb"]
        code = self.proc.wait()
        if code != 0:
            raise ServeError(self._stderr_tail() or f"exit {code}")
        return rss

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def search_interleaved(entries, data, settings, nq, repeats, threads, pass_s):
    """Searches several systems with their timed passes interleaved.

    entries: [(name, spec, index path)]. Returns {name: result}, each result
    shaped as search_system's (or {"missing": ...} for a driver that failed,
    which leaves the others running)."""
    served, results = {}, {}

    def fail(name, err):
        log(f"  {name}: MISSING (search failed: {err})")
        results[name] = {"missing": f"search failed: {err}"}
        served.pop(name).kill()

    # One driver started at a time, so that each cold start (open the index,
    # answer one query at the first setting, as `search` does) runs alone.
    # A cold start is one sample of a noisy host: each system starts
    # COLD_SAMPLES drivers, taking turns, and its median is reported; the
    # last driver stays to be searched.
    samples = {name: [] for name, _, _ in entries}
    for name, _, _ in entries:
        results[name] = {"points": []}
    for rep in range(COLD_SAMPLES):
        for name, spec, path in entries:
            if "missing" in results[name]:
                continue
            arg = "db=" if spec["driver"] == SQLITE_RUN else "index="
            served[name] = Served(name, [spec["driver"], "serve", arg + path, f"queries={data['queries']}",
                                         f"truth={data['truth']}", f"truthk={data['truth_k']}",
                                         f"dim={data['dim']}", f"nq={nq}", f"threads={threads}",
                                         f"pass_s={pass_s}", f"cold_setting={settings[0]}",
                                         *spec["search"]])
            try:
                samples[name].append(served[name].reply("cold_s", SERVE_TIMEOUT["start"])["cold_s"])
                if rep < COLD_SAMPLES - 1:
                    served[name].finish()
                    del served[name]
            except ServeError as e:
                fail(name, e)
    rounds = 0

    def each_in_turn(command, key):
        """`command` to every system, one at a time, starting one further each round."""
        nonlocal rounds
        names = list(served)
        if names:
            k = rounds % len(names)
            names = names[k:] + names[:k]
        rounds += 1
        for name in names:
            try:
                served[name].ask(command, key, SERVE_TIMEOUT[command])
            except ServeError as e:
                fail(name, e)

    for s in settings:
        for name in list(served):
            try:
                served[name].ask(f"setting {s}", "ready", SERVE_TIMEOUT["setting"])
            except ServeError as e:
                fail(name, e)
        for _ in range(repeats):
            each_in_turn("pass", "pass_qps")
        for _ in range(repeats if threads > 1 else 0):
            each_in_turn("tpass", "tpass_qps")
        for name in list(served):
            try:
                p = served[name].ask("done", "setting", SERVE_TIMEOUT["done"])
                if p["setting"] != s:
                    raise ServeError(f"setting {p['setting']} reported for {s}")
            except ServeError as e:
                fail(name, e)
                continue
            results[name]["points"].append(p)
            log(f"    {name:<17} setting {p['setting']:4d}: recall@10 {p['recall']:.4f}  {p['qps']:9.1f} QPS  "
                f"p50 {p['p50_ms']:.3f} ms  p99 {p['p99_ms']:.3f} ms  {p['threads']} threads {p['qps_threads']:9.1f} QPS")
    for name in list(served):
        try:
            rss = served[name].finish()
        except ServeError as e:
            fail(name, e)
            continue
        served.pop(name)
        results[name].update({"cold_s": statistics.median(samples[name]), "cold_samples_s": samples[name], "search_rss_mb": rss, "nq": nq})
    return results


def qps_at(result, target):
    """(QPS, setting) of the fastest point reaching the recall target."""
    ok = [p for p in result.get("points", []) if p["recall"] >= target]
    if not ok:
        return None, None
    best = max(ok, key=lambda p: p["qps"])
    return best["qps"], best["setting"]


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"


def bench_dataset(name, profile, args, generator=None):
    data = datasets.prepare(name, CACHE, generator=generator, log=log)
    log(f"\n== {name}: {data['description']}; {data['n']:,} x {data['dim']}, {data['nq']:,} queries available")
    index_dir = os.path.join(CACHE, "index", name)
    os.makedirs(index_dir, exist_ok=True)
    specs = systems_for(data)
    if args.get("systems"):
        wanted = args["systems"].split(",")
        unknown = [w for w in wanted if w not in specs]
        if unknown:
            sys.exit(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(specs)}")
        specs = {k: v for k, v in specs.items() if k in wanted}
    # Every build first, so that the searches follow one another closely.
    results, built = {}, {}
    for sys_name, spec in specs.items():
        if "same_build_as" in spec:
            results[sys_name] = None                # searched below, in this order
            continue
        record, path = build_system(sys_name, spec, data, index_dir, args.get("rebuild", False))
        if path is None:
            results[sys_name] = record
            log(f"  {sys_name}: MISSING ({record['missing']})")
            continue
        if spec.get("build_only"):
            results[sys_name] = {"build": record, "points": [], "nq": "-", "cold_s": None}
            continue
        results[sys_name] = None
        built[sys_name] = (record, path)
    searched = {}
    for sys_name, spec in specs.items():
        if results[sys_name] is not None:
            continue
        if "same_build_as" in spec:
            if spec["same_build_as"] not in built:
                results[sys_name] = {"missing": f"needs {spec['same_build_as']}"}
                continue
            built[sys_name] = (None, built[spec["same_build_as"]][1])
        searched[sys_name] = spec
    # The ANN systems, interleaved (see the docstring).
    ann = [(n, spec, built[n][1]) for n, spec in searched.items() if n not in EXACT]
    if ann:
        nq = min(data["nq"], profile["nq"])
        log(f"  searching {', '.join(n for n, _, _ in ann)} interleaved: {nq} queries x "
            f"{len(profile['efs'])} settings x {args['repeats']} passes of at least {args['pass_s']} s each, "
            "taking turns, "
            f"1 and {args['threads']} threads")
        found = search_interleaved(ann, data, profile["efs"], nq, args["repeats"], args["threads"],
                                   args["pass_s"])
        for n, _, _ in ann:
            if "missing" not in found[n]:
                found[n]["build"] = built[n][0]
            results[n] = found[n]
    # The exact systems, one after another.
    for sys_name, spec in searched.items():
        if sys_name not in EXACT:
            continue
        path = built[sys_name][1]
        settings = [0]
        nq = min(data["nq"], profile["nq_exact"])
        log(f"  {sys_name}: searching, {nq} queries x {len(settings)} settings x {args['repeats']} runs, "
            f"1 and {args['threads']} threads")
        res = search_system(sys_name, spec, data, path, settings, nq, args["repeats"], args["threads"],
                            args["pass_s"])
        if "missing" in res:
            log(f"  {sys_name}: MISSING ({res['missing']})")
            results[sys_name] = res
            continue
        res["build"] = built[sys_name][0]
        results[sys_name] = res
        for p in res["points"]:
            log(f"    setting {p['setting']:4d}: recall@10 {p['recall']:.4f}  {p['qps']:9.1f} QPS  "
                f"p50 {p['p50_ms']:.3f} ms  p99 {p['p99_ms']:.3f} ms  {p['threads']} threads {p['qps_threads']:9.1f} QPS")
    return {"data": {k: v for k, v in data.items() if k not in ("base", "queries", "truth")}, "results": results,
            "interleaved": [n for n, _, _ in ann]}


def summary_lines(ds):
    """The ratios a reader wants, computed from this run only."""
    res, data = ds["results"], ds["data"]
    get = lambda s: res.get(s, {}) if "missing" not in res.get(s, {}) else {}  # noqa: E731
    lines = []
    exact_qps = {s: (get(s).get("points") or [{}])[0].get("qps") for s in EXACT}
    for t in TARGETS:
        ours, ours_ef = qps_at(get("vectordb"), t)
        if ours is None:
            lines.append(f"recall@10 >= {t}: vectordb does not reach it with the ef values tried")
            continue
        parts = [f"recall@10 >= {t}: vectordb {ours:,.0f} QPS (ef_search={ours_ef})"]
        for peer in ("hnswlib", "faiss-hnsw"):
            q, ef = qps_at(get(peer), t)
            parts.append(f"vectordb/{peer} {ratio(ours, q)}" + (f" ({peer} {q:,.0f} QPS, ef={ef})" if q else ""))
        for ex in EXACT:
            parts.append(f"vs {ex} {ratio(ours, exact_qps[ex])}")
        lines.append("; ".join(parts))
    b = {s: (get(s).get("build") or {}) for s in ("vectordb", "hnswlib", "hnswlib-mt", "faiss-hnsw", "sqlite-vec")}
    if b["vectordb"].get("build_s"):
        parts = [f"build: vectordb {b['vectordb']['build_s']:.1f} s ({data['n'] / b['vectordb']['build_s']:,.0f} vectors/s)"]
        for peer in ("hnswlib", "hnswlib-mt", "faiss-hnsw", "sqlite-vec"):
            if b[peer].get("build_s"):
                parts.append(f"vectordb/{peer} throughput {ratio(b[peer]['build_s'], b['vectordb']['build_s'])}"
                             + (" (sqlite-vec builds no index)" if peer == "sqlite-vec" else "")
                             + (f" ({b[peer].get('threads')} threads)" if peer == "hnswlib-mt" else ""))
        lines.append("; ".join(parts))
    bmt = get("vectordb-mt").get("build") or {}
    if bmt.get("build_s"):
        parts = [f"parallel build ({BUILD_THREADS} threads): vectordb-mt {bmt['build_s']:.1f} s "
                 f"({data['n'] / bmt['build_s']:,.0f} vectors/s)"]
        for peer in ("vectordb", "hnswlib", "hnswlib-mt"):
            if b[peer].get("build_s"):
                parts.append(f"vectordb-mt/{peer} throughput {ratio(b[peer]['build_s'], bmt['build_s'])}")
        lines.append("; ".join(parts))
    if exact_qps["vectordb-exact"] and exact_qps["sqlite-vec"]:
        lines.append(f"exact search: vectordb/sqlite-vec {ratio(exact_qps['vectordb-exact'], exact_qps['sqlite-vec'])}, "
                     f"vectordb/faiss-flat {ratio(exact_qps['vectordb-exact'], exact_qps['faiss-flat'])}")
    q95 = [p for p in get("vectordb").get("points", []) if p["recall"] >= 0.95]
    if q95:
        p = max(q95, key=lambda p: p["qps"])
        lines.append(f"vectordb with {p['threads']} threads (separate connections) at ef={p['setting']}: "
                     f"{p['qps_threads']:,.0f} QPS, {p['qps_threads'] / p['qps']:.2f}x one thread")
    base = get("vectordb-baseline")
    if base:
        # Same recall, same queries: QPS per ef setting and build time.
        parts = []
        for p, q in zip(get("vectordb").get("points", []), base.get("points", [])):
            parts.append(f"ef={p['setting']} {ratio(p['qps'], q['qps'])} (recall {p['recall']:.4f} vs {q['recall']:.4f})")
        bb = base.get("build") or {}
        if b["vectordb"].get("build_s") and bb.get("build_s"):
            parts.append(f"build throughput {ratio(bb['build_s'], b['vectordb']['build_s'])}")
        lines.append("vectordb/vectordb-baseline: " + "; ".join(parts))
    missing = [f"{s} ({r['missing']})" for s, r in res.items() if "missing" in r]
    if missing:
        lines.append("MISSING: " + "; ".join(missing))
    return lines


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_plot(ds, out_dir):
    """Recall vs QPS, all systems on one chart, as PNG via gnuplot."""
    name = ds["data"]["name"]
    gp = shutil.which("gnuplot")
    if gp is None:
        return None
    dat = os.path.join(out_dir, f".{name}.dat")
    blocks, titles = [], []
    for s, r in ds["results"].items():
        pts = sorted(r.get("points", []), key=lambda p: p["recall"])
        if not pts:
            continue
        blocks.append("\n".join(f"{p['recall']:.5f} {p['qps']:.3f}" for p in pts))
        titles.append(s)
    if not blocks:
        return None
    with open(dat, "w") as f:
        f.write("\n\n\n".join(blocks) + "\n")
    png = os.path.join(out_dir, f"{name}.png")
    plots = ", ".join(f"'{dat}' index {i} with linespoints pt 7 title '{t}'" for i, t in enumerate(titles))
    script = (f"set terminal pngcairo size 900,600 noenhanced; set output '{png}'; "
              f"set title '{name} ({ds['data']['n']:,} x {ds['data']['dim']}, {ds['data']['metric']}): recall@10 vs queries/s, 1 thread, k=10'; "
              "set xlabel 'recall@10'; set ylabel 'queries per second (log scale)'; set logscale y; "
              "set grid; set key left bottom; "
              f"plot {plots}")
    subprocess.run([gp, "-e", script], check=True)
    os.remove(dat)
    return png


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def write_markdown(run, out_dir):
    lines = ["# Benchmark results", "",
             f"Generated by `bench/run.py` ({run['profile']} profile) on {run['date']}, commit {run['commit']}.",
             f"Machine: {run['cpu']}, {run['cores']} cores; SQLite {run['sqlite']}. Single-thread figures unless "
             "marked; k = 10; recall@10 against exact ground truth; QPS is the median of "
             f"{run['repeats']} timed passes after two warm-up passes"
             + (f", each pass repeating the queries to last at least {run['pass_s']:g} s"
                if run.get("pass_s") else "")
             + ("; the ANN systems' passes were interleaved (one pass of each system in turn, the first system "
                "rotating), so that a change of load falls on all of them alike"
                if run.get("interleaved") else "")
             + f"; the threaded column uses {run['threads']} threads "
             "(separate connections for the SQLite systems). Builds are single-threaded but hnswlib-mt's (on "
             f"{run['threads']} threads, not searched); a build reused from the "
             "cache shows the time measured when it was made. Peak RSS includes the driver's copy of the input "
             "vectors. Cold start: a new process opens the index (for SQLite: opens the database and loads the "
             "extension) and answers one query, with the OS page cache warm"
             + (f"; the median of {run['cold_samples']} such processes per system, taking turns"
                if run.get("cold_samples") else "") + ".", ""]
    for ds in run["datasets"]:
        d = ds["data"]
        lines += [f"## {d['name']}: {d['description']}", "",
                  f"{d['n']:,} base vectors x {d['dim']} dimensions ({d['raw_bytes'] / 2**20:.0f} MiB raw float32), "
                  f"metric {d['metric']}; data checksum `{d['checksum'][:16]}`"
                  + (f"; 1-minute load average {ds['load'][0]} at the start, {ds['load'][1]} at the end "
                     f"({run['cores']} cores)." if ds.get("load") else "."), ""]
        lines += ["Summary (ratios from this run):", ""] + [f"- {s}" for s in ds["summary"]] + [""]
        lines += ["| system | setting | recall@10 | QPS | QPS " + f"{run['threads']} threads | p50 ms | p99 ms |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s, r in ds["results"].items():
            if "missing" in r:
                lines.append(f"| {s} | MISSING: {r['missing']} | | | | | |")
                continue
            for p in r["points"]:
                setting = "exact" if s in EXACT else f"ef={p['setting']}"
                lines.append(f"| {s} | {setting} | {p['recall']:.4f} | {p['qps']:,.1f} | {p['qps_threads']:,.1f} | "
                             f"{p['p50_ms']:.3f} | {p['p99_ms']:.3f} |")
        lines += ["", "| system | build s | vectors/s | size MiB | size / raw | peak RSS build MiB | "
                  "peak RSS search MiB | cold start ms | queries timed |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s, r in ds["results"].items():
            if "missing" in r:
                continue
            b = r.get("build") or {}
            bs = b.get("build_s")
            size = b.get("index_bytes")
            lines.append(
                f"| {s} | {fmt(bs, '.1f')}{' (cached)' if b.get('cached') else ''} | "
                f"{fmt(d['n'] / bs if bs else None, ',.0f')} | {fmt(size / 2**20 if size else None, ',.0f')} | "
                f"{fmt(size / d['raw_bytes'] if size else None, '.2f')} | {fmt(b.get('build_rss_mb'), ',.0f')} | "
                f"{fmt(r.get('search_rss_mb'), ',.0f')} | {fmt(r['cold_s'] * 1e3 if r.get('cold_s') else None, '.1f')} | "
                f"{r['nq']} |")
        if ds.get("plot"):
            lines += ["", f"![recall vs QPS, {d['name']}]({os.path.basename(ds['plot'])})"]
        lines.append("")
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


def parse_args(argv):
    args = {"profile": "full", "repeats": 5, "threads": 2, "out": "bench", "datasets": None, "custom": None,
            "rebuild": False}
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in ("--quick", "--smoke"):
            args["profile"] = a[2:]
        elif a == "--rebuild":
            args["rebuild"] = True
        elif a.startswith("--rebuild="):
            args["rebuild"] = a.split("=", 1)[1].split(",")
        elif a in ("--datasets", "--out", "--repeats", "--threads", "--base", "--queries", "--metric", "--name",
                   "--baseline", "--systems", "--pass-seconds"):
            i += 1
            args[a[2:].replace("-", "_")] = argv[i]
        else:
            sys.exit(f"unknown argument {a}\n{__doc__}")
        i += 1
    args["repeats"], args["threads"] = int(args["repeats"]), int(args["threads"])
    args["pass_s"] = float(args.pop("pass_seconds")) if "pass_seconds" in args else None
    return args


def main():
    global BASELINE_EXT, BUILD_THREADS
    args = parse_args(sys.argv)
    BUILD_THREADS = args["threads"]
    if args.get("baseline"):
        BASELINE_EXT = os.path.abspath(args["baseline"])
    profile = PROFILES[args["profile"]]
    if args["pass_s"] is None:
        args["pass_s"] = profile["pass_s"]
    os.makedirs(args["out"], exist_ok=True)
    sqlite_version = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split(" ")[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    run = {"profile": args["profile"], "date": datetime.datetime.now().isoformat(timespec="minutes"),
           "commit": commit or "unknown", "cpu": cpu_name(), "cores": os.cpu_count(), "sqlite": sqlite_version,
           "repeats": args["repeats"], "pass_s": args["pass_s"], "threads": args["threads"],
           # The ANN systems' timed passes alternate (search_interleaved).
           "interleaved": True, "cold_samples": COLD_SAMPLES, "datasets": []}
    jobs = []
    if args.get("base"):
        name = args.get("name") or os.path.splitext(os.path.basename(args["base"]))[0]
        jobs.append((name, datasets.custom(args["base"], args["queries"], args.get("metric") or "l2")))
    else:
        names = args["datasets"].split(",") if args["datasets"] else profile["datasets"]
        jobs += [(n, None) for n in names]
    t0 = time.time()
    for name, gen in jobs:
        load_before = os.getloadavg()[0]
        ds = bench_dataset(name, profile, args, generator=gen)
        # Other work on the machine skews absolute figures (same-run ratios
        # less so); the load average says how quiet it was.
        ds["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        ds["summary"] = summary_lines(ds)
        ds["plot"] = write_plot(ds, args["out"])
        run["datasets"].append(ds)
        log(f"\n-- {name} summary")
        for s in ds["summary"]:
            log("  " + s)
        # After every data set, so that an interrupted run keeps what it measured.
        with open(os.path.join(args["out"], "results.json"), "w") as f:
            json.dump(run, f, indent=1)
        write_markdown(run, args["out"])
    log(f"\nwrote {args['out']}/RESULTS.md in {time.time() - t0:.0f} s")
    missing = any("missing" in r for ds in run["datasets"] for r in ds["results"].values())
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
