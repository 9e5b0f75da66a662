"""Smoke test of the benchmark harness, run by `make test` so it cannot rot.

Runs bench/run.py --smoke (every system on a 2,000 x 16 data set) into
build/bench-smoke and checks what it produced: every system present with
sane figures, exact systems exact, ANN systems accurate at a generous ef,
the Markdown table, the plot, the ground truth against numpy, the vector
file loaders, and that a second run reuses the cached builds.

usage: /usr/bin/python3 bench/smoke_test.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import datasets  # noqa: E402
import harness  # noqa: E402
import run as bench_run  # noqa: E402

OUT = "build/bench-smoke"
SYSTEMS = ("vectordb", "vectordb-exact", "sqlite-vec", "hnswlib", "faiss-hnsw", "faiss-flat")
_runs = []


def run_harness():
    """bench/run.py --smoke, once per call; returns (stdout, parsed results)."""
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--out", OUT],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"bench/run.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    with open(os.path.join(OUT, "results.json")) as f:
        results = json.load(f)
    _runs.append(proc.stdout)
    return proc.stdout, results


def first_run():
    if not _runs:
        run_harness()
    with open(os.path.join(OUT, "results.json")) as f:
        return _runs[0], json.load(f)


def test_every_system_reports_every_figure():
    _, run = first_run()
    res = run["datasets"][0]["results"]
    for s in SYSTEMS:
        assert s in res and "missing" not in res[s], f"{s}: {res.get(s)}"
        r = res[s]
        assert r["points"], f"{s} has no search points"
        for p in r["points"]:
            assert p["qps"] > 0 and p["qps_threads"] > 0 and p["threads"] == 2, (s, p)
            assert 0 < p["p50_ms"] <= p["p99_ms"], (s, p)
        assert r["cold_s"] and r["cold_s"] > 0, (s, r["cold_s"])
        if s in ("vectordb", "hnswlib", "faiss-hnsw"):
            # Served systems: the median of one cold start per driver started.
            c = r["cold_samples_s"]
            assert len(c) == run["cold_samples"] >= 3 and r["cold_s"] == sorted(c)[len(c) // 2], (s, c)
        assert r["search_rss_mb"] and r["search_rss_mb"] > 1, (s, r["search_rss_mb"])
        if s != "vectordb-exact":
            b = r["build"]
            assert b["build_s"] > 0 and b["rows"] == 2000 and b["index_bytes"] > 0, (s, b)


def test_exact_systems_are_exact_and_ann_systems_accurate():
    _, run = first_run()
    res = run["datasets"][0]["results"]
    for s in ("vectordb-exact", "sqlite-vec", "faiss-flat"):
        assert res[s]["points"][0]["recall"] == 1.0, (s, res[s]["points"])
    for s in ("vectordb", "hnswlib", "faiss-hnsw"):
        best = max(p["recall"] for p in res[s]["points"])
        assert best >= 0.95, (s, res[s]["points"])


def test_summary_table_and_plot():
    out, run = first_run()
    ds = run["datasets"][0]
    assert any("vectordb/hnswlib" in line for line in ds["summary"]), ds["summary"]
    assert any(line.startswith("exact search: vectordb/sqlite-vec") for line in ds["summary"]), ds["summary"]
    assert "vectordb/hnswlib" in out
    with open(os.path.join(OUT, "RESULTS.md")) as f:
        md = f.read()
    for s in SYSTEMS:
        assert f"| {s} |" in md, f"{s} missing from RESULTS.md"
    assert run["commit"] in md and "MISSING" not in md
    with open(os.path.join(OUT, "tiny.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "tiny.png is not a PNG"


def test_second_run_reuses_cached_builds():
    first_run()
    out, run = run_harness()
    for s in ("vectordb", "sqlite-vec", "hnswlib", "faiss-hnsw", "faiss-flat"):
        assert f"{s}: reusing the build" in out, f"{s} was rebuilt:\n{out}"
        assert run["datasets"][0]["results"][s]["build"]["cached"] is True


def test_ann_passes_interleaved():
    out, run = first_run()
    ds = run["datasets"][0]
    assert run["interleaved"] is True
    assert ds["interleaved"] == ["vectordb", "hnswlib", "faiss-hnsw"], ds["interleaved"]
    assert "searching vectordb, hnswlib, faiss-hnsw interleaved" in out, out
    with open(os.path.join(OUT, "RESULTS.md")) as f:
        assert "passes were interleaved" in f.read()


def test_serve_protocol():
    """A driver in serve mode: one JSON line per command, the setting's line
    as search prints it, an error reply and exit 1 for a bad command."""
    first_run()
    data = datasets.prepare("tiny", ".cache/bench", log=lambda m: None)
    spec = bench_run.systems_for(data)["hnswlib"]
    _, path = bench_run.build_system("hnswlib", spec, data, ".cache/bench/index/tiny")
    argv = [bench_run.HNSWLIB_RUN, "serve", "index=" + path, "queries=" + data["queries"],
            "truth=" + data["truth"], f"truthk={data['truth_k']}", f"dim={data['dim']}", "nq=50", "threads=2",
            "metric=l2"]
    proc = subprocess.run(argv, input="setting 64\npass\npass\ntpass\n\ndone\n", capture_output=True, text=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, proc
    assert [next(iter(r)) for r in rows] == ["cold_s", "ready", "pass_qps", "pass_qps", "tpass_qps", "setting",
                                             "peak_rss_mb"], rows
    assert rows[1] == {"ready": 64, "recall": rows[5]["recall"], "rounds": 1, "thread_rounds": 1}, rows
    assert rows[1]["recall"] >= 0.95, rows
    line = rows[5]
    assert set(line) == {"setting", "recall", "qps", "p50_ms", "p99_ms", "qps_threads", "threads"}, line
    assert abs(line["qps"] - (rows[2]["pass_qps"] + rows[3]["pass_qps"]) / 2) < 0.02, line   # the median of two
    assert line["qps_threads"] == rows[4]["tpass_qps"] and line["threads"] == 2, line
    # pass_s: each timed pass repeats the queries (how often depends on the
    # warm-up's time); the setting's line is the same.
    proc = subprocess.run(argv + ["pass_s=0.02"], input="setting 64\npass\ntpass\ndone\n", capture_output=True,
                          text=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, proc
    assert rows[1]["rounds"] >= 1 and rows[1]["thread_rounds"] >= 1, rows
    assert rows[4]["recall"] == rows[1]["recall"] and rows[4]["qps"] == rows[2]["pass_qps"], rows
    for bad in ("pass\n", "setting 64\nbogus\n", "setting 64\ndone\n"):
        proc = subprocess.run(argv, input=bad, capture_output=True, text=True)
        last = [json.loads(line) for line in proc.stdout.splitlines()][-2]
        assert proc.returncode == 1 and "error" in last, (bad, proc)


def test_ground_truth_matches_numpy():
    data = datasets.prepare("tiny", ".cache/bench", log=lambda m: None)
    base = np.fromfile(data["base"], dtype="<f4").reshape(-1, data["dim"]).astype(np.float64)
    queries = np.fromfile(data["queries"], dtype="<f4").reshape(-1, data["dim"]).astype(np.float64)
    truth = np.fromfile(data["truth"], dtype="<i4").reshape(-1, data["truth_k"])
    d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(axis=2)
    for i in range(len(queries)):
        order = np.argsort(d[i], kind="stable")[:10]
        # Float32 kernels may swap near-ties; the sets of the top 10 agree
        # unless the 10th and 11th are within rounding.
        gap = d[i, order[9]] - d[i, np.argsort(d[i], kind="stable")[10]]
        if abs(gap) > 1e-3:
            assert set(order) == set(truth[i, :10]), (i, order, truth[i, :10])
        assert all(d[i, truth[i, j]] <= d[i, truth[i, j + 1]] + 1e-3 for j in range(99)), i


def test_vector_file_loaders():
    rng = np.random.default_rng(5)
    f = rng.normal(size=(7, 5)).astype("<f4")
    ints = rng.integers(-9, 9, size=(4, 3)).astype("<i4")
    b = rng.integers(0, 255, size=(3, 6)).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        def xvecs(path, a, dtype):
            with open(path, "wb") as fh:
                for row in a:
                    fh.write(np.int32(a.shape[1]).tobytes() + row.astype(dtype).tobytes())
        xvecs(os.path.join(tmp, "a.fvecs"), f, "<f4")
        xvecs(os.path.join(tmp, "a.ivecs"), ints, "<i4")
        xvecs(os.path.join(tmp, "a.bvecs"), b, np.uint8)
        np.save(os.path.join(tmp, "a.npy"), f)
        assert np.array_equal(datasets.load_vectors(os.path.join(tmp, "a.fvecs")), f)
        assert np.array_equal(datasets.load_vectors(os.path.join(tmp, "a.ivecs")), ints)
        assert np.array_equal(datasets.load_vectors(os.path.join(tmp, "a.bvecs")), b)
        assert np.array_equal(datasets.load_vectors(os.path.join(tmp, "a.npy")), f)
        with open(os.path.join(tmp, "bad.fvecs"), "wb") as fh:
            fh.write(np.int32(5).tobytes() + b"\0" * 7)
        for bad in ("bad.fvecs", "a.txt"):
            try:
                datasets.load_vectors(os.path.join(tmp, bad))
            except ValueError:
                continue
            raise AssertionError(f"{bad} was accepted")


if __name__ == "__main__":
    harness.run(globals())
