"""vec_npy_each(blob): reading NumPy .npy files held in BLOBs.

Files come from numpy.save (every dtype and layout it accepts) and from a
hand-written header builder for every malformed or unsupported case; each
error must name the byte offset where the file stops making sense.

usage: python3 tests/test_import.py path/to/vectordb [name-filter]
"""
import io
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import connect, expect_error, run  # noqa: E402

import numpy as np  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
db = connect(EXT)


def save(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def npy(header, data=b"", version=(1, 0), hlen=None):
    """A .npy file with this header text (padded like numpy, newline-ended)."""
    h = header.encode("latin1")
    start = 10 if version[0] == 1 else 12
    pad = (-(start + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    n = len(h) if hlen is None else hlen
    if version[0] == 1:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack("<H", n)
    else:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack("<I", n)
    return prefix + h + data


def rows(blob):
    return db.execute("SELECT rowid, vector FROM vec_npy_each(?)", (blob,)).fetchall()


def err(blob, *fragments, offset=None):
    """The query must fail naming every fragment and, if given, the offset."""
    frags = list(fragments) + ([f"(at offset {offset})"] if offset is not None else [])
    return expect_error(db, "SELECT rowid, vector FROM vec_npy_each(?)", *frags, params=(blob,))


def as_f32(b):
    return np.frombuffer(b, dtype=np.float32)


# ---- what it reads ----------------------------------------------------------

def test_float32_2d_rows_and_rowids():
    a = np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32)
    got = rows(save(a))
    assert [r for r, _ in got] == list(range(7))
    for i, (_, v) in enumerate(got):
        assert np.array_equal(as_f32(v), a[i])


def test_every_dtype_and_byte_order():
    base = np.array([[1.5, -2.25, 3.0], [0.0, 100.0, -7.5]])
    for dt in ("<f4", ">f4", "<f8", ">f8"):
        got = rows(save(base.astype(dt)))
        assert len(got) == 2
        for i, (_, v) in enumerate(got):
            assert np.array_equal(as_f32(v), base[i].astype(np.float32)), dt
    u = np.array([[0, 255, 7]], dtype=np.uint8)
    assert np.array_equal(as_f32(rows(save(u))[0][1]), [0.0, 255.0, 7.0])   # exact
    i8 = np.array([[-128, 0, 127]], dtype=np.int8)
    v = rows(save(i8))[0][1]
    assert v == bytes([0x80, 0, 0x7F])
    # int8 rows carry the int8 subtype: vec_to_json prints integers
    assert db.execute("SELECT vec_to_json(vector) FROM vec_npy_each(?)",
                      (save(i8),)).fetchone()[0] == "[-128,0,127]"


def test_float64_rounds_to_nearest_float32():
    a = np.array([[0.1, 1 / 3, 1e-40, -3.4028234e38]], dtype=np.float64)
    assert np.array_equal(as_f32(rows(save(a))[0][1]), a[0].astype(np.float32))


def test_one_d_array_is_one_vector():
    got = rows(save(np.array([1, 2, 3, 4], dtype=np.float32)))
    assert len(got) == 1 and got[0][0] == 0
    assert np.array_equal(as_f32(got[0][1]), [1, 2, 3, 4])


def test_empty_2d_array_has_no_rows():
    assert rows(save(np.zeros((0, 4), dtype=np.float32))) == []
    assert rows(save(np.zeros((0, 0), dtype=np.float32))) == []


def test_null_argument_has_no_rows():
    assert db.execute("SELECT * FROM vec_npy_each(NULL)").fetchall() == []


def test_format_versions_and_header_spellings():
    data = np.array([[1, 2], [3, 4]], dtype="<f4").tobytes()
    for ver in ((1, 0), (2, 0), (3, 0)):
        f = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", data, ver)
        assert [as_f32(v).tolist() for _, v in rows(f)] == [[1, 2], [3, 4]], ver
    # double quotes, any key order, no trailing comma, Python 2's long suffix
    f = npy('{"shape": (2L, 2L), "fortran_order": False, "descr": "<f4"}', data)
    assert len(rows(f)) == 2
    f = npy("{'descr':'|u1','fortran_order':False,'shape':(2,)}", b"\x05\x06")
    assert as_f32(rows(f)[0][1]).tolist() == [5, 6]


def test_insert_select_loads_a_table_and_knn_matches_numpy():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 8)).astype(np.float32)
    db.execute("CREATE VIRTUAL TABLE imp USING vectordb(embedding float[8])")
    try:
        db.execute("INSERT INTO imp(rowid, embedding) SELECT rowid + 1, vector FROM vec_npy_each(?)",
                   (save(a),))
        assert db.execute("SELECT count(*) FROM imp").fetchone()[0] == 300
        q = rng.standard_normal(8).astype(np.float32)
        got = [r for (r,) in db.execute(
            "SELECT rowid FROM imp WHERE embedding MATCH ? AND k = 10", (q.tobytes(),))]
        want = (np.argsort(((a - q) ** 2).sum(axis=1), kind="stable")[:10] + 1).tolist()
        assert got == want
        # int8 rows into a float column: the subtype makes this an error, not garbage
        expect_error(db, "INSERT INTO imp(rowid, embedding) SELECT rowid + 1000, vector "
                         "FROM vec_npy_each(?)", "expected a float32 vector but got a int8",
                     params=(save(np.ones((1, 8), dtype=np.int8)),))
    finally:
        db.execute("DROP TABLE imp")


# ---- arguments --------------------------------------------------------------

def test_argument_required_and_must_be_a_blob():
    expect_error(db, "SELECT * FROM vec_npy_each", "a BLOB argument is required")
    for value, kind in (("'abc'", "TEXT"), ("42", "INTEGER"), ("4.5", "REAL")):
        expect_error(db, f"SELECT * FROM vec_npy_each({value})", f"got {kind}")


# ---- malformed and unsupported files, each with its offset -------------------

def test_magic():
    err(b"", "not a .npy file", offset=0)
    err(b"\x93NUMP", "not a .npy file", offset=0)
    err(b"PK\x03\x04" + b"\x00" * 60, "not a .npy file", offset=0)


def test_truncated_prefix():
    err(b"\x93NUMPY\x01", "format version needs 2 bytes", offset=7)
    err(b"\x93NUMPY\x01\x00", "header length needs 2 bytes", offset=8)
    err(b"\x93NUMPY\x01\x00\x10", "header length needs 2 bytes", offset=9)
    err(b"\x93NUMPY\x02\x00\x10\x00", "header length needs 4 bytes", offset=10)


def test_unsupported_version():
    good = save(np.zeros((1, 2), dtype=np.float32))
    for major, minor in ((4, 0), (1, 1), (0, 0)):
        bad = good[:6] + bytes([major, minor]) + good[8:]
        err(bad, f"unsupported .npy format version {major}.{minor}", offset=6)


def test_truncated_header():
    good = save(np.zeros((1, 2), dtype=np.float32))
    err(good[:50], "the header needs 118 bytes from offset 10, the BLOB has 50", offset=50)
    f = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4,
            version=(2, 0), hlen=1 << 20)
    err(f, "the header needs 1048576 bytes from offset 12", offset=len(f))


def header_error(header, fragment, token):
    """header is malformed at the first occurrence of token."""
    f = npy(header)
    err(f, fragment, offset=10 + header.index(token))


def test_malformed_dicts():
    header_error("['descr', '<f4']", "expected '{' starting the header dict", "[")
    header_error("{descr: '<f4'}", "expected a quoted string", "descr")
    header_error("{'descr' '<f4'}", "expected ':' after a key", "'<f4'")
    header_error("{'descr': '<f4' 'shape': (1,)}", "expected ',' or '}'", "'shape'")
    header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
                 "unexpected or repeated key 'extra'", "'extra'")
    header_error("{'descr': '<f4', 'descr': '<f4'}", "unexpected or repeated key 'descr'",
                 "'descr': '<f4'}")
    header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                 "unexpected text after the dict", "x")
    f = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)")
    # The dict never closes: the error points at the end of the header.
    err(f, "expected ',' or '}'", offset=len(f))


def test_malformed_strings():
    header_error("{'descr': '<f4\\n'}", "unsupported character in a string", "\\")
    header_error("{'d\xe9scr': '<f4'}", "unsupported character in a string", "\xe9")
    f = npy("{'descr': '<f4")
    err(f, "unterminated string", offset=10 + "{'descr': '<f4".index("'<f4"))


def test_unsupported_dtypes():
    for descr in ("<i4", "<f2", ">i8", "<c8", "|b1", "<U3", "=f4", "|f4", "<f16", "O"):
        h = "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }" % descr
        header_error(h, f"dtype '{descr}' is not supported", "'" + descr)
    long = "x" * 100
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }" % long
    header_error(h, "dtype '" + "x" * 40 + "' is not supported", "'" + long)
    a = np.zeros(2, dtype=[("x", "<f4"), ("y", "<f4")])
    f = save(a)
    err(f, "structured dtypes are not supported", offset=f.index(b"[("))


def test_malformed_fortran_order():
    header_error("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
                 "expected True or False", "0")


def test_malformed_shapes():
    base = "{'descr': '<f4', 'fortran_order': False, 'shape': %s}"
    header_error(base % "[1, 2]", "expected '(' starting the shape tuple", "[1")
    header_error(base % "(-1, 2)", "expected a dimension", "-1")
    header_error(base % "(1 2)", "expected ',' or ')' in the shape", "2)")
    header_error(base % "(99999999999999999999, 2)", "dimension in the shape is too large",
                 "9999")


def test_missing_keys():
    for missing, header in (
            ("descr", "{'fortran_order': False, 'shape': (1,), }"),
            ("fortran_order", "{'descr': '<f4', 'shape': (1,), }"),
            ("shape", "{'descr': '<f4', 'fortran_order': False, }")):
        err(npy(header, b"\0" * 4), f"the key '{missing}' is missing", offset=10)


def test_fortran_order_refused():
    a = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    f = save(a)
    err(f, "Fortran-order arrays are not supported", offset=f.index(b"True"))


def test_dimensions_other_than_one_or_two():
    for a in (np.float32(3.0).reshape(()), np.zeros((2, 2, 2), dtype=np.float32)):
        f = save(a)
        err(f, f"the array has {a.ndim} dimensions", offset=f.index(b"'shape': (") + 9)


def test_zero_and_too_many_elements():
    for a in (np.zeros(0, dtype=np.float32), np.zeros((3, 0), dtype=np.float32)):
        f = save(a)
        err(f, "the vectors have 0 elements", offset=f.index(b"'shape': (") + 9)
    f = save(np.zeros((1, 8193), dtype=np.int8))
    err(f, "the vectors have 8193 elements; at most 8192", offset=f.index(b"'shape': (") + 9)
    assert len(rows(save(np.zeros((1, 8192), dtype=np.int8)))) == 1


def test_truncated_and_trailing_data():
    a = np.ones((3, 4), dtype=np.float32)
    f = save(a)
    data_at = len(f) - 48
    err(f[:-1], f"3 x 4 elements of 4 bytes need 48 bytes from offset {data_at}, "
                "the BLOB has 47 there", offset=len(f) - 1)
    err(f[:data_at], "need 48 bytes", offset=data_at)
    err(f + b"\0", "goes on for 1 bytes after the data", offset=len(f))
    # a header whose shape claims far more than the BLOB holds
    h = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 8192), }"
    big = npy(h, b"\0" * 16)
    err(big, "1099511627776 x 8192 elements of 8 bytes need", offset=len(big))


def test_values_vectordb_cannot_hold():
    for dt in ("<f4", ">f4", "<f8"):
        for bad, word in ((np.nan, "NaN"), (np.inf, "+Inf"), (-np.inf, "-Inf")):
            a = np.array([[1, 2, 3], [4, 5, 6]], dtype=dt)
            a[1, 2] = bad
            err(save(a), f"row 1, element 2 is {word}; vectors must be finite")
    a = np.array([[1.0, 1e39]], dtype=np.float64)
    err(save(a), "row 0, element 1 (1e+39) is beyond float32's range")
    # Rows before the bad one were produced: errors are per row, on reading it.
    a = np.array([[1.0], [np.nan]], dtype=np.float32)
    assert db.execute("SELECT count(*) FROM vec_npy_each(?)", (save(a),)).fetchone()[0] == 2


def test_mutated_files_fail_cleanly():
    """Random byte flips, truncations and insertions: each either reads or
    fails with a vec_npy_each error (under the ASan build, no memory error)."""
    import random
    r = random.Random(20261205)
    seeds = [save(np.arange(12, dtype=dt).reshape(3, 4)) for dt in ("<f4", ">f8", "|i1", "|u1")]
    seeds.append(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }",
                     b"\0" * 8, version=(3, 0)))
    ok = failed = 0
    for _ in range(3000):
        b = bytearray(r.choice(seeds))
        for _ in range(r.randint(1, 4)):
            op = r.randrange(3)
            i = r.randrange(len(b) + 1)
            if op == 0 and i < len(b):
                b[i] = r.randrange(256)
            elif op == 1:
                del b[i:]
            else:
                b[i:i] = bytes([r.choice(b"(),:'{} 0123456789TrueFals<f4|i1\n")])
        try:
            rows(bytes(b))
            ok += 1
        except Exception as e:
            assert str(e).startswith("vec_npy_each: "), e
            failed += 1
    assert ok > 0 and failed > 0, (ok, failed)



# ---- .fvecs, .bvecs, .ivecs ---------------------------------------------------

def vecs(a, dtype):
    """The texmex layout: each vector's int32 dimension, then its elements."""
    a = np.asarray(a)
    out = b""
    for row in a:
        out += struct.pack("<i", len(row)) + np.asarray(row, dtype=dtype).tobytes()
    return out


def test_texmex_formats():
    r = np.random.default_rng(3)
    f = r.standard_normal((6, 5)).astype(np.float32)
    got = db.execute("SELECT rowid, vector FROM vec_fvecs_each(?)", (vecs(f, "<f4"),)).fetchall()
    assert [i for i, _ in got] == list(range(6))
    assert all((as_f32(v) == f[i]).all() for i, v in got)
    b = r.integers(0, 256, (4, 7)).astype(np.uint8)
    got = db.execute("SELECT vector FROM vec_bvecs_each(?)", (vecs(b, "u1"),)).fetchall()
    assert all((as_f32(v) == b[i].astype(np.float32)).all() for i, (v,) in enumerate(got))
    iv = r.integers(-1000, 1000, (3, 4)).astype(np.int32)
    got = db.execute("SELECT vector FROM vec_ivecs_each(?)", (vecs(iv, "<i4"),)).fetchall()
    assert all((as_f32(v) == iv[i].astype(np.float32)).all() for i, (v,) in enumerate(got))
    # Loads a table in one statement.
    db.execute("CREATE VIRTUAL TABLE tv USING vectordb(e float[5])")
    db.execute("INSERT INTO tv(rowid, e) SELECT rowid + 1, vector FROM vec_fvecs_each(?)", (vecs(f, "<f4"),))
    assert db.execute("SELECT count(*) FROM tv").fetchone() == (6,)
    db.execute("DROP TABLE tv")
    assert db.execute("SELECT * FROM vec_fvecs_each(x'')").fetchall() == []


def test_texmex_errors_name_the_offset():
    f = np.ones((3, 4), dtype=np.float32)
    good = vecs(f, "<f4")
    q = "SELECT vector FROM vec_fvecs_each(?)"
    expect_error(db, q, "vec_fvecs_each: 3 bytes, too short", "(at offset 0)", params=(b"\x04\x00\x00",))
    expect_error(db, q, "dimension 0 is not from 1 to 8192", "(at offset 0)", params=(struct.pack("<i", 0),))
    expect_error(db, q, "dimension -3 is not", params=(struct.pack("<i", -3) + b"\x00" * 12,))
    expect_error(db, q, "the file ends inside vector 2, 19 of its 20 bytes", "(at offset 40)",
                 params=(good[:-1],))
    bad = bytearray(good)
    bad[20:24] = struct.pack("<i", 5)
    expect_error(db, q, "vector 1 has dimension 5, the first has 4", "(at offset 20)", params=(bytes(bad),))
    nan = vecs(np.array([[1, float("nan"), 2, 3]], dtype=np.float32), "<f4")
    expect_error(db, q, "vec_fvecs_each: row 0, element 1 is NaN", params=(nan,))
    big = vecs(np.array([[1, 16777217]], dtype=np.int32), "<i4")
    expect_error(db, "SELECT vector FROM vec_ivecs_each(?)", "element 1 (16777217) has no exact float32",
                 params=(big,))
    expect_error(db, "SELECT vector FROM vec_bvecs_each('x')", "must be the BLOB of a .bvecs file, got TEXT")
    expect_error(db, "SELECT vector FROM vec_ivecs_each", "vec_ivecs_each: a BLOB argument is required")
    # Mutated and truncated files: an answer or an error naming the function, never a crash.
    import random
    rnd = random.Random(5)
    seeds = [good, vecs(np.arange(12, dtype=np.uint8).reshape(3, 4), "u1")]
    answered = failed = 0
    for _ in range(600):
        b = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(b) + 1)
            if rnd.random() < 0.5 and i < len(b):
                b[i] = rnd.randrange(256)
            else:
                del b[i:]
        fn = rnd.choice(["vec_fvecs_each", "vec_bvecs_each", "vec_ivecs_each"])
        try:
            db.execute(f"SELECT vector FROM {fn}(?)", (bytes(b),)).fetchall()
            answered += 1
        except Exception as e:
            assert str(e).startswith(fn + ": "), e
            failed += 1
    assert answered > 0 and failed > 0, (answered, failed)


run(globals())
