"""SQL-level tests of vectordb's functions, through the real SQLite library.

usage: /usr/bin/python3 tests/test_sql.py EXTENSION_PATH [unused] [name-filter]
"""
import json
import math
import os
import random
import sqlite3
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, expect_error, one, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
db = connect(EXT)


def f32(*xs):
    return struct.pack(f"<{len(xs)}f", *xs)


def floats(blob):
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))


# ---- build information -----------------------------------------------------

def test_version_and_debug():
    v = one(db, "SELECT vec_version()")
    assert v.startswith("v") and v.count(".") == 2, v
    dbg = one(db, "SELECT vec_debug()")
    assert f"Version: {v}" in dbg, dbg
    simd = [line for line in dbg.splitlines() if line.startswith("SIMD: ")]
    assert simd and simd[0].split()[1] in ("scalar", "base", "avx2", "avx512", "avx512vnni"), dbg
    assert "SQLite: " + sqlite3.sqlite_version in dbg, dbg


def test_only_entry_point_exported():
    so = EXT if EXT.endswith(".so") else EXT + ".so"
    out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                         text=True, check=True).stdout
    syms = [line.split()[-1] for line in out.splitlines() if line.strip()]
    exported = [s for s in syms if not s.startswith("_")]
    assert exported == ["sqlite3_vectordb_init"], exported
    undef = subprocess.run(["nm", "-D", "--undefined-only", so], capture_output=True,
                           text=True, check=True).stdout
    assert "sqlite3_" not in undef, "the loadable module must not link libsqlite3"


def test_function_flags():
    rows = db.execute("SELECT name, flags FROM pragma_function_list "
                      "WHERE name LIKE 'vec\\_%' ESCAPE '\\'").fetchall()
    flags = dict(rows)
    expected = ["vec_version", "vec_debug", "vec_f32", "vec_int8", "vec_bit",
                "vec_length", "vec_type", "vec_to_json", "vec_add", "vec_sub",
                "vec_normalize", "vec_slice", "vec_distance_l2", "vec_distance_l1",
                "vec_distance_cosine", "vec_distance_hamming", "vec_distance_dot",
                "vec_quantize_binary", "vec_quantize_int8"]
    for name in expected:
        assert name in flags, f"{name} not registered"
        assert flags[name] & 0x800, f"{name} not DETERMINISTIC"
        assert flags[name] & 0x200000, f"{name} not INNOCUOUS"
    for name in ("vec_length", "vec_distance_l2", "vec_add"):
        assert flags[name] & 0x100000, f"{name} does not declare SUBTYPE"


def test_usable_in_index_and_untrusted_schema():
    d = connect(EXT)
    d.execute("CREATE TABLE t(v BLOB)")
    # Index expressions require deterministic functions.
    d.execute("CREATE INDEX t_len ON t(vec_length(v))")
    d.execute("INSERT INTO t VALUES (vec_f32('[1,2,3]')), (vec_f32('[1,2]'))")
    assert one(d, "SELECT count(*) FROM t WHERE vec_length(v) = 3") == 1
    # With trusted_schema off, only innocuous functions may run from views.
    d.execute("CREATE VIEW dist AS SELECT vec_distance_l2(v, v) AS d FROM t")
    d.execute("PRAGMA trusted_schema = OFF")
    assert [r[0] for r in d.execute("SELECT d FROM dist")] == [0.0, 0.0]


# ---- constructors and types ------------------------------------------------

def test_f32_from_json_and_blob():
    assert floats(one(db, "SELECT vec_f32('[1, 2.5, -3]')")) == [1.0, 2.5, -3.0]
    assert floats(one(db, "SELECT vec_f32(?)", f32(1, 2))) == [1.0, 2.0]
    assert one(db, "SELECT vec_type(vec_f32('[1]'))") == "float32"
    # An untagged BLOB is float32; JSON text is float32.
    assert one(db, "SELECT vec_type(?)", f32(1, 2)) == "float32"
    assert one(db, "SELECT vec_type('[1,2]')") == "float32"


def test_int8_and_bit_keep_their_type():
    assert one(db, "SELECT vec_type(vec_int8('[1,-2,3]'))") == "int8"
    assert one(db, "SELECT vec_type(vec_bit(x'ff00'))") == "bit"
    assert one(db, "SELECT vec_length(vec_bit(x'ff00'))") == 16
    assert one(db, "SELECT vec_length(vec_int8('[1,-2,3]'))") == 3
    assert one(db, "SELECT vec_int8('[1,-2,127,-128]')") == bytes([1, 254, 127, 128])
    assert one(db, "SELECT vec_int8(x'01fe')") == bytes([1, 254])
    # A subtype does not survive storage in a table, as in sqlite-vec: a
    # stored int8 vector reads back as float32 bytes until re-tagged.
    d = connect(EXT)
    d.execute("CREATE TABLE t(v BLOB)")
    d.execute("INSERT INTO t VALUES (vec_int8('[1,2,3,4]'))")
    assert one(d, "SELECT vec_type(v) FROM t") == "float32"
    assert one(d, "SELECT vec_type(vec_int8(v)) FROM t") == "int8"


def test_constructor_type_conflicts():
    expect_error(db, "SELECT vec_f32(vec_int8('[1,2,3,4]'))", "expected a float32 vector but got a int8")
    expect_error(db, "SELECT vec_int8(vec_bit(x'01'))", "expected a int8 vector but got a bit")
    expect_error(db, "SELECT vec_bit('[1,0]')", "vec_bit", "BLOB")


def test_bad_json_is_rejected_with_reason():
    cases = {
        "[1 2]": "expected ',' or ']'",
        "[1,2,]": "expected a number",
        "[1,2] junk": "unexpected text after ']'",
        "[1,2": "missing ']'",
        "1,2": "expected '['",
        "[]": "zero-length",
        "[NaN]": "expected a number",
        "[Infinity]": "expected a number",
        "[1e39]": "out of the float32 range",
    }
    for text, fragment in cases.items():
        expect_error(db, "SELECT vec_f32(?)", "vec_f32", fragment, params=(text,))
    expect_error(db, "SELECT vec_int8('[200]')", "out of range -128..127")
    expect_error(db, "SELECT vec_int8('[1.5]')", "not an integer")


def test_bad_blobs_and_values():
    expect_error(db, "SELECT vec_f32(x'0000803f00')", "not a multiple of 4")
    expect_error(db, "SELECT vec_f32(x'')", "zero-length")
    expect_error(db, "SELECT vec_length(?)", "NaN", "element 1", params=(f32(1, float("nan")),))
    expect_error(db, "SELECT vec_distance_l2(?, ?)", "+Inf",
                 params=(f32(float("inf")), f32(1)))
    expect_error(db, "SELECT vec_f32(42)", "BLOB or JSON text", "INTEGER")
    expect_error(db, "SELECT vec_length(4.5)", "BLOB or JSON text", "REAL")


def test_dimension_limits():
    assert one(db, "SELECT vec_length(?)", f32(*([0.5] * 8192))) == 8192
    expect_error(db, "SELECT vec_length(?)", "8193 dimensions", "maximum of 8192",
                 params=(f32(*([0.5] * 8193)),))
    expect_error(db, "SELECT vec_f32(?)", "maximum of 8192",
                 params=(json.dumps([1] * 8193),))
    assert one(db, "SELECT vec_length(vec_bit(?))", bytes(8192)) == 65536
    expect_error(db, "SELECT vec_bit(?)", "maximum of 65536", params=(bytes(8193),))


def test_null_in_null_out():
    for sql in ["vec_f32(NULL)", "vec_int8(NULL)", "vec_bit(NULL)", "vec_length(NULL)",
                "vec_type(NULL)", "vec_to_json(NULL)", "vec_add(NULL, '[1]')",
                "vec_sub('[1]', NULL)", "vec_normalize(NULL)", "vec_slice(NULL, 0, 1)",
                "vec_distance_l2(NULL, '[1]')", "vec_distance_cosine('[1]', NULL)",
                "vec_distance_hamming(NULL, NULL)", "vec_quantize_binary(NULL)",
                "vec_quantize_int8(NULL, 'unit')"]:
        assert one(db, f"SELECT {sql} IS NULL") == 1, sql
    assert db.execute("SELECT * FROM vec_each(NULL)").fetchall() == []


# ---- JSON output -------------------------------------------------------------

def test_to_json_round_trips():
    rnd = random.Random(7)
    for _ in range(300):
        xs = [struct.unpack("<f", struct.pack("<f", rnd.uniform(-1e6, 1e6) * 10 ** rnd.randint(-30, 30)))[0]
              for _ in range(rnd.randint(1, 20))]
        text = one(db, "SELECT vec_to_json(?)", f32(*xs))
        assert f32(*json.loads(text)) == f32(*xs), (text, xs)
        # What vec_to_json prints, vec_f32 reads back bit for bit.
        assert one(db, "SELECT vec_f32(?)", text) == f32(*xs)
    assert one(db, "SELECT vec_to_json(vec_int8('[1,-128,127]'))") == "[1,-128,127]"
    # Bits print LSB-first: element 0 is bit 0 of byte 0.
    assert json.loads(one(db, "SELECT vec_to_json(vec_bit(x'0180'))")) == [1] + [0] * 14 + [1]
    assert one(db, "SELECT vec_to_json('[0.1]')") == "[0.1]"


# ---- arithmetic ----------------------------------------------------------------

def test_add_sub():
    assert floats(one(db, "SELECT vec_add('[1,2]', '[0.5,-4]')")) == [1.5, -2.0]
    assert floats(one(db, "SELECT vec_sub('[1,2]', '[0.5,-4]')")) == [0.5, 6.0]
    # int8 arithmetic wraps modulo 256 (sqlite-vec's semantics).
    assert one(db, "SELECT vec_to_json(vec_add(vec_int8('[100,-100]'), vec_int8('[100,-100]')))") == "[-56,56]"
    assert one(db, "SELECT vec_type(vec_sub(vec_int8('[1]'), vec_int8('[2]')))") == "int8"
    expect_error(db, "SELECT vec_add('[1,2]', '[1]')", "dimension mismatch: 2 vs 1")
    expect_error(db, "SELECT vec_add('[1]', vec_int8('[1]'))", "type mismatch: float32 vs int8")
    expect_error(db, "SELECT vec_add(vec_bit(x'01'), vec_bit(x'01'))", "not defined for bit")
    expect_error(db, "SELECT vec_add('[3e38]', '[3e38]')", "overflows float32")


def test_normalize():
    v = floats(one(db, "SELECT vec_normalize('[3,4]')"))
    assert abs(v[0] - 0.6) < 1e-7 and abs(v[1] - 0.8) < 1e-7
    rnd = random.Random(3)
    xs = [rnd.uniform(-5, 5) for _ in range(300)]
    n = floats(one(db, "SELECT vec_normalize(?)", f32(*xs)))
    assert abs(math.sqrt(sum(x * x for x in n)) - 1) < 1e-6
    expect_error(db, "SELECT vec_normalize('[0,0]')", "zero vector")
    expect_error(db, "SELECT vec_normalize(vec_int8('[1]'))", "only float32")


def test_slice():
    assert floats(one(db, "SELECT vec_slice('[1,2,3,4]', 1, 3)")) == [2.0, 3.0]
    assert one(db, "SELECT vec_to_json(vec_slice(vec_int8('[1,2,3]'), 0, 1))") == "[1]"
    assert one(db, "SELECT vec_slice(vec_bit(x'0102'), 8, 16)") == b"\x02"
    assert one(db, "SELECT vec_type(vec_slice(vec_bit(x'0102'), 8, 16))") == "bit"
    expect_error(db, "SELECT vec_slice('[1,2]', 1, 3)", "not within the vector's 2 elements")
    expect_error(db, "SELECT vec_slice('[1,2]', -1, 1)", "not within")
    expect_error(db, "SELECT vec_slice('[1,2]', 2, 1)", "not within")
    expect_error(db, "SELECT vec_slice('[1,2]', 1, 1)", "empty")
    expect_error(db, "SELECT vec_slice(vec_bit(x'0102'), 4, 16)", "multiples of 8")
    expect_error(db, "SELECT vec_slice('[1,2]', '0', 1)", "must be integers")


# ---- distances -----------------------------------------------------------------

def test_distances_known_values():
    assert one(db, "SELECT vec_distance_l2('[0,0]', '[3,4]')") == 5.0
    assert one(db, "SELECT vec_distance_l1('[0,0]', '[3,-4]')") == 7.0
    assert one(db, "SELECT vec_distance_dot('[1,2]', '[3,4]')") == -11.0
    assert abs(one(db, "SELECT vec_distance_cosine('[1,0]', '[0,1]')") - 1.0) < 1e-12
    assert abs(one(db, "SELECT vec_distance_cosine('[1,1]', '[-2,-2]')") - 2.0) < 1e-7
    assert one(db, "SELECT vec_distance_cosine('[0,0]', '[1,2]')") is None
    assert one(db, "SELECT vec_distance_hamming(vec_bit(x'ff00'), vec_bit(x'0f01'))") == 5.0
    # int8: l1 is an exact INTEGER, as in sqlite-vec; the others are REAL.
    r = db.execute("SELECT vec_distance_l1(vec_int8('[1,2]'), vec_int8('[3,5]')), "
                   "typeof(vec_distance_l1(vec_int8('[1,2]'), vec_int8('[3,5]'))), "
                   "vec_distance_l2(vec_int8('[1,2]'), vec_int8('[4,6]')), "
                   "vec_distance_dot(vec_int8('[-128]'), vec_int8('[-128]'))").fetchone()
    assert r == (5, "integer", 5.0, -16384.0), r


def test_distances_match_python():
    rnd = random.Random(11)
    for n in (1, 7, 16, 17, 100, 784, 1000):
        a = [rnd.uniform(-2, 2) for _ in range(n)]
        b = [rnd.uniform(-2, 2) for _ in range(n)]
        a = floats(f32(*a)); b = floats(f32(*b))
        l2, l1, dot, cos = db.execute(
            "SELECT vec_distance_l2(?1,?2), vec_distance_l1(?1,?2), vec_distance_dot(?1,?2), "
            "vec_distance_cosine(?1,?2)", (f32(*a), f32(*b))).fetchone()
        w_l2 = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
        w_l1 = sum(abs(x - y) for x, y in zip(a, b))
        w_dot = sum(x * y for x, y in zip(a, b))
        w_cos = 1 - w_dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
        scale = sum(abs(x * y) for x, y in zip(a, b))
        assert abs(l2 - w_l2) <= 1e-5 * w_l2, (n, l2, w_l2)
        assert abs(l1 - w_l1) <= 1e-5 * w_l1, (n, l1, w_l1)
        assert abs(-dot - w_dot) <= 1e-5 * scale, (n, dot, w_dot)
        assert abs(cos - w_cos) <= 1e-5, (n, cos, w_cos)


def test_distance_errors():
    expect_error(db, "SELECT vec_distance_l2('[1,2]', '[1,2,3]')", "vec_distance_l2", "dimension mismatch: 2 vs 3")
    expect_error(db, "SELECT vec_distance_l1('[1]', vec_int8('[1]'))", "type mismatch")
    expect_error(db, "SELECT vec_distance_hamming('[1]', '[1]')", "needs bit vectors, not float32")
    expect_error(db, "SELECT vec_distance_l2(vec_bit(x'01'), vec_bit(x'01'))", "use hamming")
    expect_error(db, "SELECT vec_distance_cosine('[1,2', '[1,2]')", "vec_distance_cosine", "missing ']'")


# ---- quantization ----------------------------------------------------------------

def test_quantize_binary():
    # Positive elements set their bit, packed LSB-first.
    assert one(db, "SELECT vec_quantize_binary('[1,-1,1,1,-1,-1,-1,1]')") == bytes([0b10001101])
    assert one(db, "SELECT vec_type(vec_quantize_binary(vec_int8('[1,0,0,0,0,0,0,-1]')))") == "bit"
    assert one(db, "SELECT vec_quantize_binary(vec_int8('[1,0,0,0,0,0,0,-1,0,0,0,0,0,0,0,5]'))") == bytes([1, 0x80])
    expect_error(db, "SELECT vec_quantize_binary('[1,2,3]')", "multiple of 8")
    expect_error(db, "SELECT vec_quantize_binary(vec_bit(x'01'))", "already a bit vector")


def test_quantize_int8_unit():
    out = one(db, "SELECT vec_to_json(vec_quantize_int8('[-1, -0.5, 0, 0.5, 1]', 'unit'))")
    assert json.loads(out) == [-128, -64, 0, 63, 126], out
    # Outside [-1, 1] the result clamps, as in sqlite-vec.
    assert json.loads(one(db, "SELECT vec_to_json(vec_quantize_int8('[-7, 7]', 'unit'))")) == [-128, 127]
    expect_error(db, "SELECT vec_quantize_int8('[1]', 'minmax')", "'unit'")
    expect_error(db, "SELECT vec_quantize_int8(vec_int8('[1]'), 'unit')", "only float32")


# ---- vec_each --------------------------------------------------------------------

def test_vec_each():
    rows = db.execute("SELECT rowid, value FROM vec_each('[1.5, -2, 3]')").fetchall()
    assert rows == [(0, 1.5), (1, -2.0), (2, 3.0)]
    rows = db.execute("SELECT value, typeof(value) FROM vec_each(vec_int8('[1,-2]'))").fetchall()
    assert rows == [(1, "integer"), (-2, "integer")]
    bits = [r[0] for r in db.execute("SELECT value FROM vec_each(vec_bit(x'0180'))")]
    assert bits == [1] + [0] * 14 + [1], bits
    # vec_each agrees with vec_to_json element by element.
    v = f32(*[0.25 * i for i in range(40)])
    assert [r[0] for r in db.execute("SELECT value FROM vec_each(?)", (v,))] == \
        json.loads(one(db, "SELECT vec_to_json(?)", v))
    assert one(db, "SELECT sum(value) FROM vec_each(?)", v) == sum(0.25 * i for i in range(40))
    expect_error(db, "SELECT * FROM vec_each", "vector argument is required")
    expect_error(db, "SELECT * FROM vec_each('[1,')", "vec_each", "expected a number at offset 3")
    # Joined per row: each row's vector is iterated on its own.
    db.execute("CREATE TEMP TABLE ev(id INTEGER PRIMARY KEY, v BLOB)")
    db.execute("INSERT INTO ev VALUES (1, vec_f32('[1,2]')), (2, vec_f32('[3,4,5]'))")
    assert db.execute("SELECT id, count(*) FROM ev, vec_each(ev.v) GROUP BY id").fetchall() == [(1, 2), (2, 3)]


run(globals())
