"""How well a code ranks, before building anything: a brute-force proxy.

usage: /usr/bin/python3 bench/code_proxy.py [--dataset cosine-200k] [--rows 300000]
           [--queries 200]

For each code below, every base vector (the first ROWS) is coded, each query
takes the R vectors nearest by code distance, those are measured again with
their float32 vectors, and the best 10 are compared with the exact top 10
(recall@10). A code that needs a large R to reach the exact answer needs as
much re-ranking in the graph walk, where each re-ranked vector is a float32
read. Codes: int8 with a range per vector (what the index uses, vdb_quant.h;
queries as the index codes them, 256 levels per query), and 4-bit with a
range per vector, per dimension (min/max, or the 0.1th/99.9th or 1st/99th
percentiles), or per vector or per dimension after a random rotation.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402


def grid(x, levels, lo, hi):
    """Each element to the nearest of `levels` evenly spaced values in [lo, hi]."""
    scale = (hi - lo) / (levels - 1)
    scale = np.where(scale == 0, 1, scale)
    return (lo + scale * np.clip(np.rint((x - lo) / scale), 0, levels - 1)).astype(np.float32)


def per_vector(x, levels):
    return grid(x, levels, x.min(1, keepdims=True), x.max(1, keepdims=True))


def per_dim(x, levels, pct):
    return grid(x, levels, np.percentile(x, pct, axis=0), np.percentile(x, 100 - pct, axis=0))


def main():
    opts = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    data = datasets.prepare(opts.get("--dataset", "cosine-200k"), ".cache/bench")
    dim, cosine = data["dim"], data["metric"] == "cosine"
    base = np.fromfile(data["base"], dtype=np.float32).reshape(-1, dim)[:int(opts.get("--rows", 300000))]
    queries = np.fromfile(data["queries"], dtype=np.float32).reshape(-1, dim)[:int(opts.get("--queries", 200))]
    norms = np.linalg.norm(base, axis=1)

    def dist(q, x, xnorm):
        # cosine with the float32 vectors' norms, as the index's code distance
        return -(q @ x.T) / xnorm[None, :] if cosine else (x * x).sum(1)[None, :] - 2 * q @ x.T

    truth = np.argsort(dist(queries, base, norms), axis=1)[:, :10]
    rotation, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((dim, dim)))
    rbase, rqueries = base @ rotation, queries @ rotation
    codes = {
        "int8 per vector": (per_vector(base, 256), per_vector(queries, 256)),
        "4-bit per vector": (per_vector(base, 16), per_vector(queries, 256)),
        "4-bit per dimension, min/max": (per_dim(base, 16, 0), queries),
        "4-bit per dimension, 0.1%/99.9%": (per_dim(base, 16, 0.1), queries),
        "4-bit per dimension, 1%/99%": (per_dim(base, 16, 1), queries),
        "4-bit per vector, rotated": (per_vector(rbase, 16), per_vector(rqueries, 256)),
    }
    print(f"{data['name']}: {len(base):,} x {dim}, {len(queries)} queries; recall@10 after re-ranking the best R")
    for name, (xc, qc) in codes.items():
        d = dist(qc, xc, norms)
        row = []
        for r in (10, 20, 40, 80):
            cand = np.argpartition(d, r, axis=1)[:, :r]
            hit = 0
            for i, c in enumerate(cand):
                best = c[np.argsort(dist(queries[i:i + 1], base[c], norms[c])[0])[:10]]
                hit += len(set(best) & set(truth[i]))
            row.append(f"R={r}: {hit / len(queries) / 10:.3f}")
        print(f"  {name:34s} " + "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
