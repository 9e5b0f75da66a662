"""Differential test: vectordb's vec_* functions against the real sqlite-vec.

Both extensions run in the same process, each on its own connection (they
register the same function names). For every function both provide, the
same inputs (random, seeded, lengths 1..4096 including ones that are not
multiples of 8 or 16) must give the same results: bytes for vectors,
distances within a relative 1e-5.

Where vectordb deliberately differs, this file checks the documented
relation instead (vec_each bit order, vec_to_json precision, NULL
arguments); stricter input handling is covered in test_sql.py.

usage: /usr/bin/python3 tests/test_differential.py VECTORDB SQLITE_VEC
"""
import json
import os
import random
import sqlite3
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
PEER = sys.argv[2] if len(sys.argv) > 2 else ".cache/sqlite-vec-0.1.9/vec0"

ours = connect(EXT)
peer = sqlite3.connect(":memory:", isolation_level=None)
peer.enable_load_extension(True)
peer.load_extension(PEER)

rnd = random.Random(20261123)
# Every length 1..64, then a spread up to 4096 that includes awkward ones.
LENGTHS = list(range(1, 65)) + sorted(set(
    [127, 128, 129, 255, 256, 257, 511, 783, 784, 1000, 1023, 1024, 1025, 1536,
     2047, 2048, 3071, 4095, 4096] + [rnd.randint(65, 4096) for _ in range(60)]))
comparisons = {"count": 0}


def f32(xs):
    return struct.pack(f"<{len(xs)}f", *xs)


def rand_f32(n, lo=-1.0, hi=1.0):
    return [struct.unpack("<f", struct.pack("<f", rnd.uniform(lo, hi)))[0] for _ in range(n)]


def rand_i8(n):
    return bytes(rnd.randrange(256) for _ in range(n))


def q(db, sql, *params):
    return db.execute(sql, params).fetchone()[0]


def same(sql, *params):
    """Both extensions give the identical value for sql."""
    a, b = q(ours, sql, *params), q(peer, sql, *params)
    comparisons["count"] += 1
    assert a == b, f"{sql}: vectordb and sqlite-vec differ: {describe_difference(a, b)}"
    return a


def describe_difference(a, b):
    if isinstance(a, bytes) and isinstance(b, bytes):
        if len(a) != len(b):
            return f"{len(a)} vs {len(b)} bytes"
        i = next(i for i in range(len(a)) if a[i] != b[i])
        return f"first at byte {i}: {a[i]} vs {b[i]}"
    return f"{a!r} vs {b!r}"


def close(sql, *params, rel=1e-5, abs_tol=0.0):
    a, b = q(ours, sql, *params), q(peer, sql, *params)
    comparisons["count"] += 1
    if a is None or b is None:
        assert a is None and b is None, f"{sql}: {a!r} vs {b!r}"
        return
    assert type(a) is type(b), f"{sql}: types {type(a)} vs {type(b)}"
    assert abs(a - b) <= rel * max(abs(a), abs(b)) + abs_tol, f"{sql}: {a!r} vs {b!r}"


def int8_l2(ia, ib):
    """sqlite-vec sums int8 squared differences in float32, which is exact
    only below 2**24; vectordb's sum is exact everywhere. Below 2**24 the
    two must agree to 1e-5; above it vectordb must equal the exact value and
    sqlite-vec must be within float32 rounding of it."""
    exact_sq = sum((x - y) ** 2 for x, y in zip(struct.unpack(f"{len(ia)}b", ia),
                                                 struct.unpack(f"{len(ib)}b", ib)))
    sql = "SELECT vec_distance_l2(vec_int8(?), vec_int8(?))"
    a, b = q(ours, sql, ia, ib), q(peer, sql, ia, ib)
    comparisons["count"] += 1
    assert a == exact_sq ** 0.5, (a, exact_sq ** 0.5)
    tol = 1e-5 if exact_sq < 2 ** 24 else 1e-4
    assert abs(a - b) <= tol * a, f"{sql}: {a!r} vs {b!r} (exact {exact_sq ** 0.5})"


def both_fail(sql, *params):
    for db in (ours, peer):
        try:
            db.execute(sql, params).fetchall()
        except sqlite3.Error:
            continue
        raise AssertionError(f"{sql} should fail on {'vectordb' if db is ours else 'sqlite-vec'}")
    comparisons["count"] += 1


def test_constructors():
    for n in LENGTHS:
        xs = rand_f32(n, -1000, 1000)
        same("SELECT vec_f32(?)", f32(xs))
        same("SELECT vec_f32(?)", json.dumps(xs))
        ints = [rnd.randint(-128, 127) for _ in range(n)]
        same("SELECT vec_int8(?)", json.dumps(ints))
        same("SELECT vec_int8(?)", rand_i8(n))
        bits = rand_i8((n + 7) // 8)
        same("SELECT vec_bit(?)", bits)
        same("SELECT vec_length(vec_bit(?))", bits)
        same("SELECT vec_length(?)", f32(xs))
        same("SELECT vec_length(vec_int8(?))", rand_i8(n))
        for ctor in ("vec_f32", "vec_int8", "vec_bit"):
            if n <= 2048:   # 4n int8 elements must stay within the 8192 limit
                same(f"SELECT vec_type({ctor}(?))", f32(xs))


def test_to_json():
    for n in LENGTHS[::3]:
        xs = rand_f32(n, -100, 100)
        a = json.loads(q(ours, "SELECT vec_to_json(?)", f32(xs)))
        b = json.loads(q(peer, "SELECT vec_to_json(?)", f32(xs)))
        # sqlite-vec prints "%f" (6 decimals); vectordb prints exact floats.
        assert len(a) == len(b) and all(abs(x - y) <= 1e-6 + 1e-7 * abs(x) for x, y in zip(a, b))
        assert f32(a) == f32(xs), "vectordb's JSON reads back exactly"
        comparisons["count"] += 1
        same("SELECT vec_to_json(vec_int8(?))", rand_i8(n))
        same("SELECT vec_to_json(vec_bit(?))", rand_i8((n + 7) // 8))


def test_arithmetic():
    for n in LENGTHS:
        a, b = rand_f32(n, -50, 50), rand_f32(n, -50, 50)
        same("SELECT vec_add(?, ?)", f32(a), f32(b))
        same("SELECT vec_sub(?, ?)", f32(a), f32(b))
        ia, ib = rand_i8(n), rand_i8(n)
        same("SELECT vec_add(vec_int8(?), vec_int8(?))", ia, ib)
        same("SELECT vec_sub(vec_int8(?), vec_int8(?))", ia, ib)
        va = struct.unpack(f"<{n}f", q(ours, "SELECT vec_normalize(?)", f32(a)))
        vb = struct.unpack(f"<{n}f", q(peer, "SELECT vec_normalize(?)", f32(a)))
        assert all(abs(x - y) <= 1e-6 * abs(y) + 1e-7 for x, y in zip(va, vb)), n
        comparisons["count"] += 1


def test_slice():
    for n in LENGTHS:
        s = rnd.randrange(n)
        e = rnd.randint(s + 1, n)
        same("SELECT vec_slice(?, ?, ?)", f32(rand_f32(n)), s, e)
        same("SELECT vec_slice(vec_int8(?), ?, ?)", rand_i8(n), s, e)
        nbits = ((n + 7) // 8) * 8
        if nbits >= 16:
            s8 = 8 * rnd.randrange(nbits // 8 - 1)
            e8 = 8 * rnd.randint(s8 // 8 + 1, nbits // 8)
            same("SELECT vec_slice(vec_bit(?), ?, ?)", rand_i8(nbits // 8), s8, e8)


def test_distances():
    for n in LENGTHS:
        a, b = f32(rand_f32(n, -3, 3)), f32(rand_f32(n, -3, 3))
        close("SELECT vec_distance_l2(?, ?)", a, b)
        close("SELECT vec_distance_l1(?, ?)", a, b)
        close("SELECT vec_distance_cosine(?, ?)", a, b, abs_tol=1e-5)
        close("SELECT vec_distance_l2(?, ?)", a, a, abs_tol=1e-6)
        ia, ib = rand_i8(n), rand_i8(n)
        int8_l2(ia, ib)
        same("SELECT vec_distance_l1(vec_int8(?), vec_int8(?))", ia, ib)
        close("SELECT vec_distance_cosine(vec_int8(?), vec_int8(?))", ia, ib, abs_tol=1e-5)
        bits_a, bits_b = rand_i8((n + 7) // 8), rand_i8((n + 7) // 8)
        same("SELECT vec_distance_hamming(vec_bit(?), vec_bit(?))", bits_a, bits_b)
    # Non-negative data (like image pixels) and a zero vector under cosine.
    for n in (16, 784):
        a, b = f32(rand_f32(n, 0, 255)), f32(rand_f32(n, 0, 255))
        close("SELECT vec_distance_l2(?, ?)", a, b)
        close("SELECT vec_distance_cosine(?, ?)", f32([0.0] * n), b)


def test_quantization():
    for n in LENGTHS:
        if n % 8 == 0:
            same("SELECT vec_quantize_binary(?)", f32(rand_f32(n)))
            same("SELECT vec_quantize_binary(vec_int8(?))", rand_i8(n))
        same("SELECT vec_quantize_int8(?, 'unit')", f32(rand_f32(n)))
    # The edges of the 'unit' range, where truncation and float rounding bite.
    edges = [-1.0, -0.5, 0.0, 0.5, 1.0, 1 / 255, -1 / 255, 0.99, -0.99, -7.0, 7.0, 2.0, -1.5]
    same("SELECT vec_quantize_int8(?, 'unit')", f32(edges))
    same("SELECT vec_quantize_int8(?, 'UNIT')", f32(edges))
    # Every step boundary k*(2/255) - 1, where float and double rounding differ.
    step = struct.unpack("<f", struct.pack("<f", 2 / 255))[0]
    bounds = [min(1.0, k * step - 1) for k in range(256)]
    same("SELECT vec_quantize_int8(?, 'unit')", f32(bounds))


def test_vec_each():
    for n in LENGTHS[::4]:
        v = f32(rand_f32(n))
        a = ours.execute("SELECT rowid, value FROM vec_each(?)", (v,)).fetchall()
        b = peer.execute("SELECT rowid, value FROM vec_each(?)", (v,)).fetchall()
        assert a == b, n
        iv = rand_i8(n)
        a = ours.execute("SELECT rowid, value FROM vec_each(vec_int8(?))", (iv,)).fetchall()
        b = peer.execute("SELECT rowid, value FROM vec_each(vec_int8(?))", (iv,)).fetchall()
        assert a == b, n
        # Documented difference: sqlite-vec walks each byte's bits MSB-first,
        # vectordb LSB-first (the order of vec_quantize_binary and vec_to_json).
        bits = rand_i8((n + 7) // 8)
        a = [r[0] for r in ours.execute("SELECT value FROM vec_each(vec_bit(?))", (bits,))]
        b = [r[0] for r in peer.execute("SELECT value FROM vec_each(vec_bit(?))", (bits,))]
        assert len(a) == len(b) and all(a[i] == b[8 * (i // 8) + 7 - i % 8] for i in range(len(a)))
        assert a == json.loads(q(peer, "SELECT vec_to_json(vec_bit(?))", bits))
        comparisons["count"] += 3


def test_shared_errors():
    both_fail("SELECT vec_distance_l2(?, ?)", f32([1, 2]), f32([1, 2, 3]))
    both_fail("SELECT vec_distance_l2(?, vec_int8(?))", f32([1]), b"\x01")
    both_fail("SELECT vec_f32(?)", b"\x00\x00\x80")
    both_fail("SELECT vec_f32('[]')")
    both_fail("SELECT vec_int8('[300]')")
    both_fail("SELECT vec_int8('[1.5]')")
    both_fail("SELECT vec_bit('[1]')")
    both_fail("SELECT vec_quantize_binary('[1,2,3]')")
    both_fail("SELECT vec_slice('[1,2]', 1, 1)")
    both_fail("SELECT vec_slice('[1,2]', -1, 1)")
    both_fail("SELECT vec_distance_hamming('[1]', '[1]')")
    both_fail("SELECT vec_distance_l2(vec_bit(x'01'), vec_bit(x'01'))")
    both_fail("SELECT vec_normalize(vec_int8('[1]'))")
    both_fail("SELECT vec_f32(12)")
    # Documented difference: sqlite-vec rejects NULL, vectordb returns NULL.
    both_fail_peer_only = peer.execute  # keeps the intent readable below
    try:
        both_fail_peer_only("SELECT vec_length(NULL)").fetchall()
        raise AssertionError("sqlite-vec 0.1.9 was expected to reject NULL")
    except sqlite3.Error:
        pass
    assert q(ours, "SELECT vec_length(NULL)") is None


# ---- the virtual table: same schema, rows and queries through both -------------

def make_tables(decl, rows):
    """Create `decl` as vectordb on ours and vec0 on the peer and insert
    rows, a list of (rowid, {column: value})."""
    for db, module in ((ours, "vectordb"), (peer, "vec0")):
        db.execute("DROP TABLE IF EXISTS items")
        db.execute(f"CREATE VIRTUAL TABLE items USING {module}({decl})")
        db.execute("BEGIN")
        for rowid, values in rows:
            cols = ", ".join(values)
            marks = ", ".join("?" * len(values))
            db.execute(f"INSERT INTO items(rowid, {cols}) VALUES (?, {marks})",
                       (rowid,) + tuple(values.values()))
        db.execute("COMMIT")


def same_knn(sql, *params):
    a = ours.execute(sql, params).fetchall()
    b = peer.execute(sql, params).fetchall()
    comparisons["count"] += 1
    assert [r[0] for r in a] == [r[0] for r in b], f"{sql}: rowids {a[:5]} vs {b[:5]}"
    for x, y in zip(a, b):
        assert abs(x[1] - y[1]) <= 1e-5 * max(1.0, abs(y[1])), f"{sql}: {x} vs {y}"
    return a


def test_table_knn_same_as_vec0():
    for metric in ("l2", "cosine", "l1"):
        rows = [(rid, {"embedding": f32(rand_f32(24, -2, 2)), "genre": rnd.choice(["a", "b", "c"]),
                       "year": rnd.randint(1990, 2020), "part": rid % 4})
                for rid in range(1, 401)]
        make_tables(f"embedding float[24] distance_metric={metric}, genre text, year integer, "
                    f"part integer partition key", rows)
        for _ in range(10):
            q = f32(rand_f32(24, -2, 2))
            base = "SELECT rowid, distance FROM items WHERE embedding MATCH ? AND k = ?"
            same_knn(base, q, 10)
            same_knn(base, q, 400)
            same_knn(base + " AND genre = 'b'", q, 10)
            same_knn(base + " AND year > 2005 AND genre != 'c'", q, 10)
            same_knn(base + " AND part = 2", q, 10)
            same_knn(base + " AND genre IN ('a', 'c')", q, 10)
            same_knn(base + " AND rowid IN (3, 30, 33, 300, 303, 330, 333, 399)", q, 5)
            # Paging by distance: each system continues after its own last
            # distance (the two differ in the last float bits).
            same_knn(base, q, 20)
            pages = []
            for db in (ours, peer):
                first = db.execute(base, (q, 10)).fetchall()
                pages.append(first + db.execute(base + " AND distance > ?", (q, 10, first[-1][1])).fetchall())
            assert [r for r, _ in pages[0]] == [r for r, _ in pages[1]]
        # After deletes and updates both still agree.
        for db in (ours, peer):
            db.execute("DELETE FROM items WHERE rowid % 5 = 0")
            db.execute("UPDATE items SET embedding = ? WHERE rowid = 7", (f32([0.5] * 24),))
        same_knn("SELECT rowid, distance FROM items WHERE embedding MATCH ? AND k = 15",
                 f32([0.5] * 24))


def test_table_int8_and_bit_same_as_vec0():
    rows = [(rid, {"q": rand_i8(32), "b": rand_i8(8)}) for rid in range(1, 301)]
    for db, module in ((ours, "vectordb"), (peer, "vec0")):
        db.execute("DROP TABLE IF EXISTS items")
        db.execute(f"CREATE VIRTUAL TABLE items USING {module}(q int8[32], b bit[64])")
        db.executemany("INSERT INTO items(rowid, q, b) VALUES (?, vec_int8(?), vec_bit(?))",
                       [(rid, v["q"], v["b"]) for rid, v in rows])
    for _ in range(10):
        same_knn("SELECT rowid, distance FROM items WHERE q MATCH vec_int8(?) AND k = 10", rand_i8(32))
        # Hamming distances tie often and sqlite-vec orders ties arbitrarily:
        # compare the full result as a set, and check vectordb's order.
        qb = rand_i8(8)
        a = ours.execute("SELECT rowid, distance FROM items WHERE b MATCH vec_bit(?) AND k = 300", (qb,)).fetchall()
        b = peer.execute("SELECT rowid, distance FROM items WHERE b MATCH vec_bit(?) AND k = 300", (qb,)).fetchall()
        assert sorted(a) == sorted(b), "the same (rowid, distance) pairs"
        assert [d for _, d in a] == sorted(d for _, d in a), "ordered by distance"
        assert a == sorted(a, key=lambda r: (r[1], r[0])), "ties ordered by rowid"
        comparisons["count"] += 1


def test_report():
    assert comparisons["count"] > 3000, comparisons
    print(f"{comparisons['count']} differential comparisons over {len(LENGTHS)} lengths")


run(globals())
