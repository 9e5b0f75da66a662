"""make demo's picture step (scripts/demo_picture.py) on a tiny database
with the demo's schema: the PNG is valid, has the grid's size, and each
cell shows the image it should (the query, then its exact nearest
neighbours; in the last row only sandals and sneakers).

usage: python3 tests/test_demo_picture.py [vectordb-extension [name-filter]]
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from harness import connect, run  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import demo_picture as dp  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
if len(sys.argv) > 2:
    sys.argv[3:3] = [sys.argv[2]]        # harness.run reads the filter from argv[3]
WORK = tempfile.mkdtemp(prefix="vdb-picture-")
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
RNG = np.random.default_rng(3)
TRAIN = (RNG.random((80, 784)) * 255).astype(np.float32)
TRAIN_LABELS = np.arange(80) % 10
TEST = (RNG.random((3, 784)) * 255).astype(np.float32)
NQ, K = 3, 4


def build_db():
    path = os.path.join(WORK, "tiny.db")
    db = connect(EXT, path)
    db.executescript("""
      CREATE TABLE labels(label INTEGER PRIMARY KEY, name TEXT);
      CREATE TABLE test(id INTEGER PRIMARY KEY, label INTEGER, embedding BLOB);
      CREATE VIRTUAL TABLE images USING vectordb(
        embedding float[784] INDEXED BY hnsw(m=16, ef_construction=100),
        label integer, category text, +source text);
    """)
    db.executemany("INSERT INTO labels VALUES (?, ?)", enumerate(NAMES))
    db.executemany("INSERT INTO test VALUES (?, ?, ?)", [(i, i, TEST[i].tobytes()) for i in range(len(TEST))])
    db.executemany("INSERT INTO images(rowid, embedding, label, category, source) VALUES (?, ?, ?, ?, ?)",
                   [(i + 1, TRAIN[i].tobytes(), int(TRAIN_LABELS[i]), NAMES[TRAIN_LABELS[i]], f"train/{i + 1}")
                    for i in range(len(TRAIN))])
    db.close()
    return path


def exact(q, mask=None):
    d = np.sqrt(((TRAIN.astype(np.float64) - q) ** 2).sum(1))
    ids = np.arange(1, len(TRAIN) + 1)
    if mask is not None:
        d, ids = d[mask], ids[mask]
    return list(ids[np.argsort(d, kind="stable")[:K]])


def cell(png, row, col):
    x, y = dp.cell_origin(row, col)
    side = dp.SIDE * dp.SCALE
    return np.asarray(png.crop((x, y, x + side, y + side)))


def expected(vec):
    return np.asarray(dp.image_of(vec.tobytes()).convert("RGB"))


def test_picture_shows_queries_and_their_neighbours():
    db = build_db()
    out = os.path.join(WORK, "grid.png")
    p = subprocess.run([sys.executable, os.path.join(HERE, "..", "scripts", "demo_picture.py"), db, out,
                        "--queries", str(NQ), "--k", str(K), "--ext", EXT],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == out, p.stdout
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    png = Image.open(out)
    png.verify()                                   # a whole, valid PNG
    png = Image.open(out).convert("RGB")
    assert png.size == dp.grid_size(NQ + 1, K) == ((K + 1) * dp.CELL_W, dp.TITLE + (NQ + 1) * dp.CELL_H), png.size
    sandals = np.isin(TRAIN_LABELS, [NAMES.index("Sandal"), NAMES.index("Sneaker")])
    rows = [(i, exact(TEST[i])) for i in range(NQ)] + [(0, exact(TEST[0], sandals))]
    for r, (qi, ids) in enumerate(rows):
        assert np.array_equal(cell(png, r, 0), expected(TEST[qi])), f"row {r}: the query image"
        for c, rid in enumerate(ids, start=1):
            assert np.array_equal(cell(png, r, c), expected(TRAIN[rid - 1])), \
                f"row {r} cell {c}: not training image {rid}"
    # The frames and captions are drawn outside the images: the image cells
    # are not all white.
    assert cell(png, 0, 1).std() > 0


def test_bad_arguments():
    p = subprocess.run([sys.executable, os.path.join(HERE, "..", "scripts", "demo_picture.py"),
                        os.path.join(WORK, "x.db"), os.path.join(WORK, "x.png"), "--k", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--k 1 to 50" in p.stderr, p.stderr


if __name__ == "__main__":
    run(globals())
