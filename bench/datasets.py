"""Data sets for the benchmarks, prepared once and cached under .cache/bench/data.

Each prepared set is a directory holding
  base.f32, queries.f32   little-endian float32 rows, no header
  truth-k100.i32          exact top-100 neighbours per query (0-based ids),
                          computed by build/bench/groundtruth
  meta.json               shape, metric, how it was made, and the SHA-256
                          of base.f32 + queries.f32 + metric ("checksum")
The ground truth is recomputed whenever the checksum it was made for
differs from the data's, and every index a benchmark builds is cached
under a key that includes the checksum, so changed inputs never meet
stale results.

Built-in sets:
  fashion-mnist  Debian's dataset-fashion-mnist: 60,000 x 784 training
                 images as base, the 10,000 test images as queries, L2
                 (ann-benchmarks' fashion-mnist-784-euclidean).
  mixture-1m     1,000,000 x 128 Gaussian mixture (1,000 centres, sigma 0.3,
                 seed 42), 1,000 queries drawn alike, L2.
  cosine-200k    200,000 x 384 unit vectors from a Gaussian mixture (1,000
                 centres, seed 7), 1,000 queries drawn alike, cosine.
  tiny           2,000 x 16 mixture, 100 queries, L2: the harness smoke test.
Users' own data: load_vectors() reads .fvecs, .bvecs, .ivecs and .npy
(see custom()).
"""
import gzip
import hashlib
import json
import os
import struct
import subprocess

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"
GROUNDTRUTH = "build/bench/groundtruth"
TRUTH_K = 100


def read_idx_images(path):
    """An IDX image file (gzipped) as float32 rows of raw pixel values."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = struct.unpack(">III", data[4:16])
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols).astype(np.float32)


def _xvecs(path, dtype):
    """The .fvecs/.ivecs/.bvecs layout: per row an int32 dimension, then the row."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 4:
        raise ValueError(f"{path}: empty or truncated")
    dim = int(np.frombuffer(raw[:4], dtype="<i4")[0])
    width = np.dtype(dtype).itemsize
    row = 4 + dim * width
    if dim <= 0 or raw.size % row:
        raise ValueError(f"{path}: size {raw.size} is not a whole number of {dim}-d rows")
    rows = raw.reshape(-1, row)
    if not np.all(rows[:, :4].view("<i4") == dim):
        raise ValueError(f"{path}: rows of differing dimension")
    return rows[:, 4:].copy().view(dtype).reshape(-1, dim)


def load_vectors(path):
    """Vectors from .fvecs, .bvecs (uint8), .ivecs (int32) or .npy, as a 2-D array."""
    if path.endswith(".fvecs"):
        return _xvecs(path, "<f4")
    if path.endswith(".ivecs"):
        return _xvecs(path, "<i4")
    if path.endswith(".bvecs"):
        return _xvecs(path, np.uint8)
    if path.endswith(".npy"):
        a = np.load(path, allow_pickle=False)
        if a.ndim != 2:
            raise ValueError(f"{path}: expected a 2-D array, got shape {a.shape}")
        return a
    raise ValueError(f"{path}: unknown format (expected .fvecs, .bvecs, .ivecs or .npy)")


def _mixture(n, n_queries, dim, seed, centres=1000, sigma=0.3):
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 1, (centres, dim)).astype(np.float32)
    base = (c[rng.integers(0, centres, n)] + sigma * rng.normal(0, 1, (n, dim))).astype(np.float32)
    queries = (c[rng.integers(0, centres, n_queries)]
               + sigma * rng.normal(0, 1, (n_queries, dim))).astype(np.float32)
    return base, queries


def _unit(a):
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def _fashion():
    base = read_idx_images(f"{FASHION}/train-images-idx3-ubyte.gz")
    queries = read_idx_images(f"{FASHION}/t10k-images-idx3-ubyte.gz")
    return base, queries, "l2"


BUILTIN = {
    "fashion-mnist": ("Fashion-MNIST 60,000 x 784, L2 (Debian dataset-fashion-mnist)", _fashion),
    "mixture-1m": ("Gaussian mixture 1,000,000 x 128, L2 (1,000 centres, seed 42)",
                   lambda: (*_mixture(1_000_000, 1000, 128, 42), "l2")),
    "cosine-200k": ("Unit-vector mixture 200,000 x 384, cosine (1,000 centres, seed 7)",
                    lambda: (*(_unit(a) for a in _mixture(200_000, 1000, 384, 7)), "cosine")),
    "tiny": ("Gaussian mixture 2,000 x 16, L2 (smoke test)",
             lambda: (*_mixture(2000, 100, 16, 3, centres=20), "l2")),
}


def custom(base_path, queries_path, metric):
    """A user's data set from two vector files, as a generator for prepare()."""
    def make():
        base, queries = load_vectors(base_path), load_vectors(queries_path)
        if base.shape[1] != queries.shape[1]:
            raise ValueError(f"base is {base.shape[1]}-d but queries are {queries.shape[1]}-d")
        if metric == "cosine":
            base, queries = _unit(base.astype(np.float32)), _unit(queries.astype(np.float32))
        return base.astype(np.float32), queries.astype(np.float32), metric
    return (f"{os.path.basename(base_path)} + {os.path.basename(queries_path)}, {metric}", make)


def _sha256(paths, extra):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    h.update(extra.encode())
    return h.hexdigest()


def prepare(name, cache_root, generator=None, threads=2, log=print):
    """The data set `name`, made (or reused) under cache_root/data/name; a dict
    with paths, shape, metric, description and checksum."""
    description, make = generator or BUILTIN[name]
    d = os.path.join(cache_root, "data", name)
    os.makedirs(d, exist_ok=True)
    meta_path = os.path.join(d, "meta.json")
    base_path, queries_path = os.path.join(d, "base.f32"), os.path.join(d, "queries.f32")
    meta = None
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        # Reuse only what still hashes to what was recorded.
        if (meta.get("description") != description or not os.path.exists(base_path)
                or _sha256([base_path, queries_path], meta["metric"]) != meta["checksum"]):
            meta = None
    if meta is None:
        log(f"  preparing {name}: {description}")
        base, queries, metric = make()
        base.astype("<f4").tofile(base_path)
        queries.astype("<f4").tofile(queries_path)
        meta = {"name": name, "description": description, "n": int(base.shape[0]),
                "dim": int(base.shape[1]), "nq": int(queries.shape[0]), "metric": metric,
                "raw_bytes": int(base.shape[0] * base.shape[1] * 4),
                "checksum": _sha256([base_path, queries_path], metric)}
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
    truth_path = os.path.join(d, f"truth-k{TRUTH_K}.i32")
    truth_meta = truth_path + ".checksum"
    if not (os.path.exists(truth_path) and os.path.exists(truth_meta)
            and open(truth_meta).read().strip() == meta["checksum"]):
        log(f"  exact top-{TRUTH_K} ground truth for {name} ({meta['nq']} queries x {meta['n']:,} rows)")
        subprocess.run([GROUNDTRUTH, base_path, queries_path, str(meta["dim"]), str(TRUTH_K),
                        meta["metric"], str(threads), truth_path], check=True)
        with open(truth_meta, "w") as f:
            f.write(meta["checksum"] + "\n")
    return dict(meta, base=base_path, queries=queries_path, truth=truth_path, truth_k=TRUTH_K)
