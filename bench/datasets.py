"""Data sets shared by the benchmarks: Fashion-MNIST from Debian's
dataset-fashion-mnist, and a seeded Gaussian mixture."""
import gzip
import struct

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx_images(path):
    """An IDX image file as float32 rows of raw pixel values."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = struct.unpack(">III", data[4:16])
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols).astype(np.float32)


def fashion(n_queries):
    """60,000 training images as the base set, the first test images as queries."""
    base = read_idx_images(f"{FASHION}/train-images-idx3-ubyte.gz")
    queries = read_idx_images(f"{FASHION}/t10k-images-idx3-ubyte.gz")[:n_queries]
    return base, queries


def mixture(n, n_queries, dim=128, seed=42):
    """n vectors around 1,000 Gaussian centres (sigma 0.3), queries drawn alike."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (1000, dim)).astype(np.float32)
    base = (centers[rng.integers(0, 1000, n)] + 0.3 * rng.normal(0, 1, (n, dim))).astype(np.float32)
    queries = (centers[rng.integers(0, 1000, n_queries)]
               + 0.3 * rng.normal(0, 1, (n_queries, dim))).astype(np.float32)
    return base, queries
