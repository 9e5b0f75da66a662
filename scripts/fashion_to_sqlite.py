"""Load Debian's Fashion-MNIST (IDX files) into an SQLite database.

usage: /usr/bin/python3 scripts/fashion_to_sqlite.py OUT.db

Tables: train(id INTEGER PRIMARY KEY, label INTEGER, embedding BLOB) with
the 60,000 training images and test(...) with the 10,000 test images, each
image a 784-d float32 vector of raw pixel values (0..255) in vectordb's BLOB
format; labels(label INTEGER PRIMARY KEY, name TEXT).
"""
import gzip
import os
import sqlite3
import struct
import sys

import numpy as np

DATA_DIR = "/usr/share/datasets/fashion-mnist"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """An IDX file as a numpy array (magic: 0x0000 type ndim, then dims)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated ({arr.size} values for shape {dims})")
    return arr.reshape(dims)


def main(out):
    if os.path.exists(out):
        os.remove(out)
    db = sqlite3.connect(out)
    db.execute("CREATE TABLE labels(label INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO labels VALUES (?, ?)", enumerate(NAMES))
    for table, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(f"{DATA_DIR}/{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(f"{DATA_DIR}/{prefix}-labels-idx1-ubyte.gz")
        vectors = images.reshape(len(images), -1).astype("<f4")
        db.execute(f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, label INTEGER, embedding BLOB)")
        db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)",
                       ((i, int(labels[i]), vectors[i].tobytes()) for i in range(len(vectors))))
    db.commit()
    db.close()


if __name__ == "__main__":
    main(sys.argv[1])
