"""make demo's picture: test images next to their nearest training images,
found through the demo table's HNSW index, as a PNG grid.

usage: /usr/bin/python3 scripts/demo_picture.py DATABASE OUT.png [--queries N] [--k K] [--ext PATH]

DATABASE is the demo's (scripts/demo.sh, sql/demo.sql): a vectordb table
images(embedding float[784], label, category, +source) and a table
test(id, label, embedding) of query images, each a 28 x 28 image of float32
pixel values 0..255. Row i of the grid is test image i (framed) and its K
nearest images; a last row repeats test image 0 with its K nearest among
sandals and sneakers only, the demo's filtered query. Each cell is captioned
with the category and the distance. Prints the PNG's path.
"""
import argparse
import sqlite3
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIDE = 28            # pixels per image side
SCALE = 3            # each image drawn SCALE times larger
CAPTION = 24         # caption height under each image
PAD = 6              # space around each cell's image
TITLE = 22           # height of the title line at the top
CELL_W = SIDE * SCALE + 2 * PAD
CELL_H = SIDE * SCALE + 2 * PAD + CAPTION
FILTER = ("Sandal", "Sneaker")


def grid_size(rows, k):
    """The PNG's (width, height) for `rows` query rows of 1 + k cells."""
    return ((k + 1) * CELL_W, TITLE + rows * CELL_H)


def cell_origin(row, col):
    """Top-left pixel of the image in cell (row, col)."""
    return (col * CELL_W + PAD, TITLE + row * CELL_H + PAD)


def image_of(blob):
    """A float32 784-vector of pixel values as a greyscale PIL image, enlarged."""
    v = np.frombuffer(blob, dtype=np.float32)
    if v.size != SIDE * SIDE:
        raise ValueError(f"expected {SIDE * SIDE} pixels, got {v.size}")
    a = np.clip(v, 0, 255).astype(np.uint8).reshape(SIDE, SIDE)
    return Image.fromarray(255 - a, "L").resize((SIDE * SCALE, SIDE * SCALE), Image.NEAREST)


def neighbours(db, qblob, k, filtered):
    sql = ("SELECT i.rowid, i.category, i.distance, i.embedding FROM images i "
           "WHERE i.embedding MATCH ? AND i.k = ?")
    params = [qblob, k]
    if filtered:
        sql += " AND i.category IN (?, ?)"
        params += list(FILTER)
    return db.execute(sql, params).fetchall()


def draw_cell(canvas, draw, font, row, col, img, caption, frame):
    x, y = cell_origin(row, col)
    canvas.paste(img, (x, y))
    if frame:
        draw.rectangle([x - 3, y - 3, x + SIDE * SCALE + 2, y + SIDE * SCALE + 2], outline=frame, width=2)
    for i, line in enumerate(caption[:2]):
        draw.text((x, y + SIDE * SCALE + 3 + 10 * i), line[:14], fill=(0, 0, 0), font=font)


def make_picture(db, out, nq, k):
    queries = db.execute("SELECT t.id, l.name, t.embedding FROM test t JOIN labels l USING (label) "
                         "ORDER BY t.id LIMIT ?", (nq,)).fetchall()
    if not queries:
        raise ValueError("no test images in the database")
    rows = [(q, neighbours(db, q[2], k, False), False) for q in queries]
    rows.append((queries[0], neighbours(db, queries[0][2], k, True), True))
    width, height = grid_size(len(rows), k)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((PAD, 5), f"Fashion-MNIST: test image (framed), then its {k} nearest training images "
              f"through the HNSW index; last row: only {' and '.join(f.lower() + 's' for f in FILTER)}",
              fill=(0, 0, 0), font=font)
    for r, ((qid, qname, qblob), found, filtered) in enumerate(rows):
        frame = (200, 120, 0) if filtered else (0, 90, 200)
        draw_cell(canvas, draw, font, r, 0, image_of(qblob).convert("RGB"),
                  [f"test {qid}", "/".join(f.lower() for f in FILTER) if filtered else qname], frame)
        for c, (rowid, category, dist, blob) in enumerate(found, start=1):
            draw_cell(canvas, draw, font, r, c, image_of(blob).convert("RGB"),
                      [category, f"d={dist:.0f}"], None)
    canvas.save(out, "PNG")
    return rows


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("database")
    ap.add_argument("out")
    ap.add_argument("--queries", type=int, default=6)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--ext", default="./vectordb")
    a = ap.parse_args(argv)
    if not 1 <= a.queries <= 100 or not 1 <= a.k <= 50:
        ap.error("--queries must be 1 to 100 and --k 1 to 50")
    db = sqlite3.connect(a.database)
    db.enable_load_extension(True)
    db.load_extension(a.ext)
    db.enable_load_extension(False)
    make_picture(db, a.out, a.queries, a.k)
    db.close()
    print(a.out)


if __name__ == "__main__":
    main(sys.argv[1:])
