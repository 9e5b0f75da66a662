"""The bad-input catalogue: every kind of invalid input, and what it must say.

usage: /usr/bin/python3 tests/test_bad_inputs.py EXTENSION_PATH [unused] [name-filter]

Each test walks a table of (input, expected error fragment, expected error
code) and reports every case that does not fail as catalogued, so one run
shows the whole state of the error surface:

  - vectors given to the vec_* functions: wrong dimensions, NaN and Inf,
    malformed JSON, wrong types, lengths beyond the limits;
  - table declarations: unknown options, bad INDEXED BY parameters, limits;
  - KNN queries: k, ef_search, LIMIT, MATCH values, distance bounds;
  - writes and commands;
  - shadow tables: writes refused in defensive mode (through the C API with
    ctypes, as Python 3.11 has no setconfig), direct use from views;
  - damaged shadow-table content, written with plain SQL: every probe either
    works or fails with SQLITE_CORRUPT_VTAB naming the table, and
    integrity-check finds the damage;
  - bounds: no input makes a statement allocate or step without limit
    (measured with SQLite's memory high-water mark and progress handler,
    never with a clock).

Cases already covered elsewhere (tests/test_sql.py, tests/test_vtab.py,
tests/test_hnsw_table.py) appear here only as part of a systematic table.
"""
import ctypes
import os
import random
import sqlite3
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, one, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"


def f32(*xs):
    return struct.pack(f"<{len(xs)}f", *xs)


def fresh():
    return connect(EXT)


def outcome(db, sql, params=()):
    """None if sql runs, else (message, error name)."""
    try:
        db.execute(sql, params).fetchall()
        return None
    except sqlite3.Error as e:
        return str(e), getattr(e, "sqlite_errorname", "?")


def check_cases(db, cases, default_code=None, cleanup=None):
    """Every (sql, params, fragment[, code]) must fail with a message holding
    fragment and, if given, that error code name. Reports all mismatches.
    cleanup runs after each case (to drop a table a wrong case created)."""
    bad = []
    for case in cases:
        sql, params, fragment = case[0], case[1], case[2]
        code = case[3] if len(case) > 3 else default_code
        got = outcome(db, sql, params)
        if cleanup:
            db.execute(cleanup)
        if got is None:
            bad.append(f"  {sql!r}: no error, expected {fragment!r}")
        elif fragment not in got[0]:
            bad.append(f"  {sql!r}: {got[0]!r} lacks {fragment!r}")
        elif code and got[1] != code:
            bad.append(f"  {sql!r}: {got[1]} instead of {code} ({got[0]!r})")
    assert not bad, "cases that do not fail as catalogued:\n" + "\n".join(bad)


# ---- vectors through the functions ------------------------------------------------

NAN = f32(1, float("nan"), 2)
INF = f32(float("inf"))
NINF = f32(0, float("-inf"))


def test_vector_values():
    db = fresh()
    check_cases(db, [
        # wrong dimensions
        ("SELECT vec_distance_l2('[1,2]', '[1,2,3]')", (), "vector dimension mismatch: 2 vs 3"),
        ("SELECT vec_distance_cosine(?, ?)", (f32(1, 2), f32(1, 2, 3)), "dimension mismatch: 2 vs 3"),
        ("SELECT vec_add('[1]', '[1,2]')", (), "vec_add: vector dimension mismatch: 1 vs 2"),
        ("SELECT vec_distance_hamming(vec_bit(x'ff'), vec_bit(x'ffff'))", (), "dimension mismatch: 8 vs 16"),
        # mixed types
        ("SELECT vec_distance_l2(vec_int8('[1]'), '[1]')", (), "vector type mismatch: int8 vs float32"),
        ("SELECT vec_f32(vec_int8('[1,2]'))", (), "expected a float32 vector but got a int8 vector"),
        ("SELECT vec_int8(vec_bit(x'01'))", (), "expected a int8 vector but got a bit vector"),
        ("SELECT vec_distance_hamming('[1,2]', '[1,2]')", (), "hamming distance needs bit vectors, not float32"),
        ("SELECT vec_distance_l2(vec_bit(x'01'), vec_bit(x'01'))", (), "not defined for bit vectors; use hamming"),
        # non-finite values
        ("SELECT vec_f32(?)", (NAN,), "non-finite value (NaN) at element 1"),
        ("SELECT vec_length(?)", (INF,), "non-finite value (+Inf) at element 0"),
        ("SELECT vec_distance_l2(?, ?)", (NINF, f32(0, 0)), "non-finite value (-Inf) at element 1"),
        ("SELECT vec_f32('[1e39]')", (), "element 0 is out of the float32 range: 1e39"),
        ("SELECT vec_f32('[-3.5e38, 0]')", (), "out of the float32 range"),
        ("SELECT vec_add(?, ?)", (f32(3e38), f32(3e38)), "result element 0 overflows float32"),
        # malformed JSON
        ("SELECT vec_f32('[1 2]')", (), "expected ',' or ']' at offset 3"),
        ("SELECT vec_f32('[1,2,]')", (), "expected a number at offset 5"),
        ("SELECT vec_f32('[1,2] x')", (), "unexpected text after ']' at offset 6"),
        ("SELECT vec_f32('[1,2')", (), "missing ']' at offset 4"),
        ("SELECT vec_f32('1,2]')", (), "expected '[' at offset 0"),
        ("SELECT vec_f32('')", (), "expected '[' at offset 0"),
        ("SELECT vec_f32('[NaN]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[Infinity]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[+1]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[.5]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[01]')", (), "expected ',' or ']' at offset 2"),
        ("SELECT vec_f32('[0x10]')", (), "expected ',' or ']' at offset 2"),
        ("SELECT vec_f32('[1e]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[\"1\"]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[[1]]')", (), "expected a number at offset 1"),
        ("SELECT vec_f32('[1]' || char(0) || 'x')", (), "unexpected text after ']'"),
        # int8 and bit
        ("SELECT vec_int8('[128]')", (), "int8 vector element 0 is out of range -128..127: 128"),
        ("SELECT vec_int8('[-129]')", (), "out of range -128..127: -129"),
        ("SELECT vec_int8('[1.5]')", (), "int8 vector element 0 is not an integer: 1.5"),
        ("SELECT vec_int8('[1e2]')", (), "is not an integer: 1e2"),
        ("SELECT vec_bit('[1,0]')", (), "bit vectors must be given as a BLOB"),
        # empty, wrong length, wrong SQL type
        ("SELECT vec_f32('[]')", (), "zero-length vectors are not supported"),
        ("SELECT vec_f32(x'')", (), "zero-length vectors are not supported"),
        ("SELECT vec_f32(x'000000')", (), "length 3 is not a multiple of 4"),
        ("SELECT vec_length(1)", (), "a vector must be a BLOB or JSON text, not an INTEGER"),
        ("SELECT vec_length(1.5)", (), "not a REAL"),
        # beyond the limits
        ("SELECT vec_f32(zeroblob(32772))", (), "float32 vector has 8193 dimensions, more than the maximum of 8192", "SQLITE_TOOBIG"),
        ("SELECT vec_int8(zeroblob(8193))", (), "more than the maximum of 8192", "SQLITE_TOOBIG"),
        ("SELECT vec_bit(zeroblob(8193))", (), "bit vector has 65544 dimensions, more than the maximum of 65536", "SQLITE_TOOBIG"),
        ("SELECT vec_f32(?)", ("[" + ",".join(["1"] * 8193) + "]",),
         "float32 vector has more than the maximum of 8192 dimensions", "SQLITE_TOOBIG"),
        ("SELECT vec_int8(?)", ("[" + ",".join(["1"] * 8193) + "]",), "int8 vector has more than the maximum"),
        # function arguments
        ("SELECT vec_slice('[1,2,3]', 2, 1)", (), "slice [2, 1) is not within the vector's 3 elements"),
        ("SELECT vec_slice('[1,2,3]', 0, 4)", (), "is not within"),
        ("SELECT vec_slice('[1,2,3]', -1, 2)", (), "is not within"),
        ("SELECT vec_slice('[1,2,3]', 1, 1)", (), "is empty; zero-length vectors are not supported"),
        ("SELECT vec_slice('[1,2,3]', '0', 1)", (), "start and end must be integers"),
        ("SELECT vec_slice(vec_bit(x'ffff'), 4, 16)", (), "bit vectors can only be sliced at multiples of 8"),
        ("SELECT vec_normalize('[0,0]')", (), "cannot normalize a zero vector"),
        ("SELECT vec_normalize(vec_int8('[1]'))", (), "only float32 vectors can be normalized"),
        ("SELECT vec_quantize_binary('[1,2,3]')", (), "has 3 dimensions; binary quantization needs a multiple of 8"),
        ("SELECT vec_quantize_binary(vec_bit(x'01'))", (), "already a bit vector"),
        ("SELECT vec_quantize_int8('[0.5]', 'range')", (), "unknown quantization range; the supported one is 'unit'"),
        ("SELECT vec_quantize_int8('[0.5]', NULL)", (), "unknown quantization range"),
        ("SELECT vec_quantize_int8(vec_int8('[1]'), 'unit')", (), "only float32 vectors can be quantized"),
        ("SELECT vec_add(vec_bit(x'01'), vec_bit(x'01'))", (), "vec_add is not defined for bit vectors"),
        ("SELECT * FROM vec_each('[1,')", (), "expected a number"),
    ])
    # Every message names the function that failed.
    msg = outcome(db, "SELECT vec_distance_dot('[1]', '[1,2]')")[0]
    assert msg.startswith("vec_distance_dot: "), msg


# ---- declarations ------------------------------------------------------------------

def test_declarations():
    db = fresh()
    cv = "CREATE VIRTUAL TABLE x USING vectordb({})"
    cases = [
        # vector columns
        ("e float[0]", "the dimension count must be an integer from 1 to 8192"),
        ("e float[-1]", "the dimension count must be an integer from 1 to 8192"),
        ("e float[8193]", "from 1 to 8192"),
        ("e float[99999999999]", "from 1 to 8192"),
        ("e float[4.5]", "expected ']' after the dimension count"),
        ("e float[]", "the dimension count must be an integer"),
        ("e float[4 5]", "expected ']' after the dimension count"),
        ("e int8[8193]", "from 1 to 8192"),
        ("e bit[7]", "bit vectors need a dimension count divisible by 8, not 7"),
        ("e bit[65544]", "from 1 to 65536"),
        ("e float64[4]", 'unknown column type "float64"'),
        ("e bitter[8]", 'unknown column type "bitter"'),
        ("e float[4] distance_metric=manhattan", 'unknown distance_metric "manhattan"'),
        ("e float[4] distance_metric", "expected '=' after distance_metric"),
        ("e float[4] distance_metric=hamming", "distance_metric=hamming needs a bit[N] column"),
        ("e bit[8] distance_metric=l2", "bit vectors use distance_metric=hamming only"),
        ("e float[4] colour=red", 'unexpected "colour" (expected distance_metric= or INDEXED BY)'),
        # INDEXED BY
        ("e float[4] INDEXED hnsw()", "expected BY after INDEXED"),
        ("e float[4] INDEXED BY ivf()", 'unknown index "ivf" (expected hnsw(...) or flat())'),
        ("e float[4] INDEXED BY hnsw", "expected '(' after the index name"),
        ("e float[4] INDEXED BY flat(m=4)", "flat() takes no parameters"),
        ("e float[4] INDEXED BY hnsw(m=1)", "hnsw parameter m must be an integer from 2 to 128"),
        ("e float[4] INDEXED BY hnsw(m=129)", "from 2 to 128"),
        ("e float[4] INDEXED BY hnsw(m=0)", "from 2 to 128"),
        ("e float[4] INDEXED BY hnsw(m=-4)", "hnsw parameter m must be an integer"),
        ("e float[4] INDEXED BY hnsw(m=abc)", "hnsw parameter m must be an integer"),
        ("e float[4] INDEXED BY hnsw(m=)", "hnsw parameter m must be an integer"),
        ("e float[4] INDEXED BY hnsw(m=99999999999)", "hnsw parameter m must be an integer"),
        ("e float[4] INDEXED BY hnsw(m 4)", "expected '=' after hnsw parameter m"),
        ("e float[4] INDEXED BY hnsw(m=4 ef_search=8)", "expected ',' or ')' in the index parameters"),
        ("e float[4] INDEXED BY hnsw(ef_construction=0)", "ef_construction must be an integer from 1 to 4096"),
        ("e float[4] INDEXED BY hnsw(ef_construction=4097)", "from 1 to 4096"),
        ("e float[4] INDEXED BY hnsw(m=16, ef_construction=8)", "hnsw ef_construction (8) must be at least m (16)"),
        ("e float[4] INDEXED BY hnsw(ef_search=0)", "hnsw parameter ef_search must be an integer from 1 to 4096"),
        ("e float[4] INDEXED BY hnsw(ef_search=4097)", "from 1 to 4096"),
        ("e float[4] INDEXED BY hnsw(efsearch=8)", 'unknown hnsw parameter "efsearch" (expected m, ef_construction, ef_search, quantizer or threads)'),
        ("e float[4] INDEXED BY hnsw(1=2)", "expected an index parameter name or ')'"),
        ("e int8[4] INDEXED BY hnsw()", "an hnsw index needs a float[N] column"),
        ("e bit[8] INDEXED BY hnsw()", "an hnsw index needs a float[N] column"),
        ("e float[4] distance_metric=l1 INDEXED BY hnsw()", "an hnsw index supports distance_metric l2, cosine or dot"),
        # table options
        ("e float[4], chunk_size=0", "chunk_size must be a multiple of 8 from 8 to 65536"),
        ("e float[4], chunk_size=7", "multiple of 8"),
        ("e float[4], chunk_size=65544", "multiple of 8 from 8 to 65536"),
        ("e float[4], chunk_size=abc", "chunk_size must be"),
        ("e float[4], chunk_size=8 16", "unexpected text after the option value"),
        ("e float[8192], chunk_size=65536",
         "chunk_size=65536 makes a chunk of column e 2147483648 bytes, more than the maximum of 268435456"),
        ("e float[4], colour=red", 'unknown table option "colour"'),
        # columns and limits
        ("genre text", "at least one vector column (such as embedding float[384]) is required"),
        ("", "at least one vector column"),
        ("e float[4], e text", 'duplicate or reserved column name "e"'),
        ("e float[4], E text", "duplicate or reserved column name"),
        ("e float[4], distance real", 'reserved column name "distance"'),
        ("e float[4], k integer", 'reserved column name "k"'),
        ("e float[4], ef_search integer", 'reserved column name "ef_search"'),
        ("e float[4], rowid integer", 'reserved column name "rowid"'),
        ("e float[4], g", 'column "g" needs a type'),
        ("e float[4], g varchar", 'unknown column type "varchar"'),
        ("e float[4], g text primary", "expected KEY after PRIMARY"),
        ("e float[4], g text partition", "expected KEY after PARTITION"),
        ("e float[4], g text not null", 'unexpected "not" after the column type'),
        ("e float[4], g float primary key", "the primary key must be integer or text"),
        ("id integer primary key, e float[4], id2 text primary key", "a table has at most one primary key"),
        ("e float[4], +g text primary key", "an auxiliary column cannot be the primary key"),
        ("e float[4], +g text partition key", "an auxiliary column cannot be a partition key"),
        ("e float[4], g float partition key", "a partition key must be integer or text"),
        ("e float[4], g blob", "metadata columns cannot be blob; use an auxiliary (+) column"),
        ("e float[4], +", "empty column definition"),
        ("e float[4], 5 text", "expected a column name"),
        (", ".join(f"e{i} float[2]" for i in range(17)), "17 vector columns declared; the maximum is 16"),
        ("e float[2], " + ", ".join(f"p{i} integer partition key" for i in range(5)),
         "5 partition key columns declared; the maximum is 4"),
        ("e float[2], " + ", ".join(f"m{i} integer" for i in range(17)), "17 metadata columns declared; the maximum is 16"),
        ("e float[2], " + ", ".join(f"+a{i}" for i in range(17)), "17 auxiliary columns declared; the maximum is 16"),
    ]
    check_cases(db, [(cv.format(decl), (), frag) for decl, frag in cases], cleanup="DROP TABLE IF EXISTS x")
    # The table's name is its hidden command column's name.
    check_cases(db, [
        ("CREATE VIRTUAL TABLE e USING vectordb(e float[4])", (), "a table cannot be named e: it has a column e"),
        ("CREATE VIRTUAL TABLE k USING vectordb(e float[4])", (), "a table cannot be named k"),
        ("CREATE VIRTUAL TABLE distance USING vectordb(e float[4])", (), "cannot be named distance"),
    ])
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[4], genre text)")
    check_cases(db, [
        ("ALTER TABLE t RENAME TO genre", (), "cannot rename t to genre: it has a column genre"),
        ("ALTER TABLE t RENAME TO ef_search", (), "cannot rename t to ef_search"),
    ])
    # Nothing of a refused declaration or rename is left behind.
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 't%' "
                                       "AND name NOT LIKE 'vectordb_%'")]
    assert names == [], names
    assert one(db, "SELECT count(*) FROM t") == 0


# ---- queries ------------------------------------------------------------------------

def knn_table(hnsw=True, metric="l2"):
    db = fresh()
    idx = " INDEXED BY hnsw(m=4)" if hnsw else ""
    db.execute(f"CREATE VIRTUAL TABLE t USING vectordb(e float[2] distance_metric={metric}{idx}, "
               "c int8[2], genre text)")
    db.executemany("INSERT INTO t(rowid, e, c, genre) VALUES (?, ?, vec_int8(?), ?)",
                   [(i, f32(i, 1), f"[{i},1]", "a" if i % 2 else "b") for i in range(1, 11)])
    return db


def test_knn_queries():
    for hnsw in (True, False):
        db = knn_table(hnsw)
        q = "SELECT rowid FROM t WHERE e MATCH '[1,1]'"
        check_cases(db, [
            (q, (), 'a KNN query needs "AND k = ?"'),
            (q + " AND k = -1", (), "k must be from 0 to 16384, got -1"),
            (q + " AND k = 16385", (), "k must be from 0 to 16384, got 16385"),
            (q + " AND k = 1099511627776", (), "got 1099511627776"),
            (q + " AND k = '10'", (), "k must be an integer"),
            (q + " AND k = 2.5", (), "k must be an integer"),
            (q + " AND k = NULL", (), "k must be an integer"),
            (q + " AND k = 3 AND ef_search = -1", (), "ef_search must be an integer from 0 (exact search) to 4096"),
            (q + " AND k = 3 AND ef_search = 4097", (), "ef_search must be an integer from 0"),
            (q + " AND k = 3 AND ef_search = 1099511627776", (), "ef_search must be an integer from 0"),
            (q + " AND k = 3 AND ef_search = 'wide'", (), "ef_search must be an integer"),
            (q + " AND k = 3 AND distance < 'near'", (), "distance can only be compared with a number"),
            ("SELECT rowid FROM t WHERE e MATCH NULL AND k = 3", (), "the MATCH vector for e is NULL"),
            ("SELECT rowid FROM t WHERE e MATCH '[1,1,1]' AND k = 3", (),
             "query vector for column e has 3 dimensions; the column has 2"),
            ("SELECT rowid FROM t WHERE e MATCH '[1,' AND k = 3", (), "query vector for column e: malformed JSON"),
            ("SELECT rowid FROM t WHERE e MATCH vec_int8('[1,1]') AND k = 3", (),
             "expected a float32 vector but got a int8 vector"),
            ("SELECT rowid FROM t WHERE e MATCH ? AND k = 3", (NAN[:8],), "non-finite value (NaN)"),
            ("SELECT rowid FROM t WHERE e MATCH 5 AND k = 3", (), "a vector must be a BLOB or JSON text"),
            ("SELECT rowid FROM t WHERE c MATCH '[1,200]' AND k = 3", (), "out of range -128..127"),
            ("SELECT rowid FROM t WHERE genre MATCH 'a' AND k = 3", (), "MATCH works on vector columns only"),
            ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND c MATCH '[1,1]' AND k = 3", (),
             "a KNN query takes one MATCH constraint"),
        ])
        # Within the limits, large values are fine and return what exists.
        assert len(db.execute(q + " AND k = 16384").fetchall()) == 10
        assert len(db.execute(q + " AND k = 0").fetchall()) == 0
        assert len(db.execute(q + " AND k = 5 AND ef_search = 4096").fetchall()) == 5
        assert len(db.execute(q + " AND k = 5 AND ef_search = 0").fetchall()) == 5
    # Cosine distance has no value for an all-zero query, nor for one whose
    # norm overflows float32.
    db = knn_table(True, "cosine")
    check_cases(db, [
        ("SELECT rowid FROM t WHERE e MATCH '[0,0]' AND k = 3", (), "the query vector is all zeros"),
        ("SELECT rowid FROM t WHERE e MATCH '[3e38,3e38]' AND k = 3", (), "norm overflows float32"),
    ])
    # SQLite before 3.41 does not pass LIMIT with MATCH; after, LIMIT is checked like k.
    if sqlite3.sqlite_version_info >= (3, 41, 0):
        check_cases(db, [("SELECT rowid FROM t WHERE e MATCH '[1,1]' ORDER BY distance LIMIT 16385", (),
                          "LIMIT must be from 0 to 16384")])


# ---- writes and commands -------------------------------------------------------------

def test_writes_and_commands():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(id text primary key, e float[2] INDEXED BY hnsw(m=4), "
               "q int8[2], b bit[8], year integer, flag boolean, score float, genre text, +note text)")
    ok = "INSERT INTO t(id, e, q, b) VALUES ('a', '[1,1]', vec_int8('[1,1]'), vec_bit(x'01'))"
    db.execute(ok)
    ins = "INSERT INTO t(id, e, q, b{}) VALUES ('x', {}, vec_int8('[1,1]'), vec_bit(x'01'){})"
    check_cases(db, [
        (ins.format("", "'[1,1,1]'", ""), (), "column e expects 2 dimensions, got 3", "SQLITE_CONSTRAINT"),
        (ins.format("", "'[1]'", ""), (), "column e expects 2 dimensions, got 1"),
        (ins.format("", "?", ""), (f32(1, float("nan")),), "vector for column e: float32 vector has a non-finite value"),
        (ins.format("", "?", ""), (f32(float("inf"), 1),), "non-finite value (+Inf)"),
        (ins.format("", "NULL", ""), (), "vector column e of t cannot be NULL", "SQLITE_CONSTRAINT"),
        (ins.format("", "'[1,1'", ""), (), "vector for column e: malformed JSON vector"),
        (ins.format("", "x'000000'", ""), (), "length 3 is not a multiple of 4"),
        (ins.format("", "zeroblob(40000)", ""), (), "more than the maximum of 8192", "SQLITE_TOOBIG"),
        ("INSERT INTO t(id, e, q, b) VALUES ('x', '[1,1]', '[1,300]', vec_bit(x'01'))", (), "out of range -128..127"),
        ("INSERT INTO t(id, e, q, b) VALUES ('x', '[1,1]', vec_int8('[1,1]'), x'0102')", (),
         "column b expects 8 dimensions, got 16"),
        ("INSERT INTO t(id, e, q, b) VALUES ('x', '[1,1]', vec_int8('[1,1]'), '[1]')", (),
         "bit vectors have no JSON form"),
        (ins.format(", year", "'[1,1]'", ", 'x'"), (), "column year of t expects integer, got TEXT", "SQLITE_CONSTRAINT"),
        (ins.format(", year", "'[1,1]'", ", 1.5"), (), "expects integer, got REAL"),
        (ins.format(", flag", "'[1,1]'", ", 2"), (), "expects a boolean (0 or 1), got INTEGER"),
        (ins.format(", score", "'[1,1]'", ", 'high'"), (), "column score of t expects float, got TEXT"),
        (ins.format(", genre", "'[1,1]'", ", x'00'"), (), "column genre of t expects text, got BLOB"),
        (ins.format(", note", "'[1,1]'", ", 5"), (), "column note of t expects text, got INTEGER"),
        ("INSERT INTO t(id, e, q, b) VALUES (5, '[1,1]', vec_int8('[1,1]'), vec_bit(x'01'))", (),
         "primary key id of t must be text"),
        ("INSERT INTO t(rowid, id, e, q, b) VALUES ('r', 'y', '[1,1]', vec_int8('[1,1]'), vec_bit(x'01'))", (),
         "datatype mismatch"),
        (ok, (), "UNIQUE constraint failed: t.id", "SQLITE_CONSTRAINT"),
        ("UPDATE t SET e = '[1]' WHERE id = 'a'", (), "column e expects 2 dimensions, got 1"),
        ("UPDATE t SET year = 'old' WHERE id = 'a'", (), "expects integer, got TEXT"),
        ("UPDATE t SET rowid = 'r' WHERE id = 'a'", (), "rowid must be an integer"),
        # commands
        ("INSERT INTO t(t) VALUES ('frobnicate')", (), 'unknown command "frobnicate" for t (known: ef_search=N'),
        ("INSERT INTO t(t) VALUES ('ef_search=0')", (), "ef_search must be an integer from 1 to 4096"),
        ("INSERT INTO t(t) VALUES ('ef_search=4097')", (), "ef_search must be an integer from 1 to 4096"),
        ("INSERT INTO t(t) VALUES ('ef_search=')", (), "ef_search must be an integer"),
        ("INSERT INTO t(t) VALUES ('ef_search=12abc')", (), "ef_search must be an integer"),
        ("INSERT INTO t(t) VALUES ('ef_search=99999999999999999999')", (), "ef_search must be an integer"),
        ("INSERT INTO t(t) VALUES ('cache_mb=0')", (), "cache_mb must be an integer from 1 to 1048576"),
        ("INSERT INTO t(t) VALUES ('cache_mb=-1')", (), "cache_mb must be an integer from 1 to 1048576"),
        ("INSERT INTO t(t) VALUES ('cache_mb=1048577')", (), "cache_mb must be an integer from 1 to 1048576"),
        ("INSERT INTO t(t) VALUES ('')", (), 'unknown command ""'),
        ("SELECT vectordb_check('nosuch')", (), "no such table: main.nosuch"),
        ("SELECT vectordb_check(NULL)", (), "vectordb_check: the table name must be text"),
    ])
    # None of the failed writes left anything behind.
    assert one(db, "SELECT count(*) FROM t") == 1
    assert one(db, "SELECT vectordb_check('t')") == "ok"


# ---- shadow tables are not a way in --------------------------------------------------

def sqlite_lib():
    """The SQLite library Python's sqlite3 module runs on, through ctypes: a
    library LD_PRELOAD'ed in front of the system's is in the global scope;
    otherwise loading libsqlite3.so.0 finds the copy _sqlite3 already has.
    Never a second copy, whose internals would mix with the first's."""
    try:
        lib = ctypes.CDLL(None)
        lib.sqlite3_libversion
    except AttributeError:
        lib = ctypes.CDLL("libsqlite3.so.0")
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    return lib if lib.sqlite3_libversion().decode() == sqlite3.sqlite_version else None


class CApi:
    """vectordb on a connection of its own through SQLite's C API (ctypes),
    for what Python's sqlite3 module cannot do: sqlite3_db_config()."""
    SQLITE_DBCONFIG_DEFENSIVE = 1010

    def __init__(self):
        self.lib = sqlite_lib()
        assert self.lib is not None, "cannot reach the SQLite library Python uses"
        self.lib.sqlite3_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        self.lib.sqlite3_exec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                          ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p)]
        self.lib.sqlite3_errmsg.argtypes = [ctypes.c_void_p]
        self.lib.sqlite3_errmsg.restype = ctypes.c_char_p
        self.lib.sqlite3_close.argtypes = [ctypes.c_void_p]
        self.lib.sqlite3_free.argtypes = [ctypes.c_void_p]
        self.lib.sqlite3_enable_load_extension.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.lib.sqlite3_load_extension.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                                    ctypes.POINTER(ctypes.c_char_p)]
        self.db = ctypes.c_void_p()
        assert self.lib.sqlite3_open(b":memory:", ctypes.byref(self.db)) == 0
        self.lib.sqlite3_enable_load_extension(self.db, 1)
        err = ctypes.c_char_p()
        rc = self.lib.sqlite3_load_extension(self.db, os.path.abspath(EXT).encode(), None, ctypes.byref(err))
        assert rc == 0, f"cannot load {EXT}: {err.value}"

    def defensive(self, on):
        flag = ctypes.c_int(-1)
        self.lib.sqlite3_db_config(self.db, ctypes.c_int(self.SQLITE_DBCONFIG_DEFENSIVE),
                                   ctypes.c_int(on), ctypes.byref(flag))
        return flag.value

    def exec(self, sql):
        """None on success, else the error message."""
        err = ctypes.c_char_p()
        rc = self.lib.sqlite3_exec(self.db, sql.encode(), None, None, ctypes.byref(err))
        if rc == 0:
            return None
        return self.lib.sqlite3_errmsg(self.db).decode()

    def close(self):
        self.lib.sqlite3_close(self.db)


def test_shadow_tables_in_defensive_mode():
    c = CApi()
    assert c.exec("CREATE VIRTUAL TABLE t USING vectordb(e float[2] INDEXED BY hnsw(m=4), genre text)") is None
    assert c.exec("INSERT INTO t(rowid, e, genre) VALUES (1, '[1,2]', 'a'), (2, '[2,1]', 'b')") is None
    assert c.defensive(1) == 1
    bad = []
    for sql in ["UPDATE t_chunks SET validity = x'00'", "UPDATE t_chunks SET rowids = zeroblob(64)",
                "DELETE FROM t_rows", "UPDATE t_rows SET chunk_offset = 7",
                "INSERT INTO t_vectors00 VALUES (99, x'00')", "UPDATE t_vectors00 SET vectors = x'00'",
                "DELETE FROM t_hnsw00", "UPDATE t_hnsw00 SET links = x'0100'", "UPDATE t_hnsw00 SET level = 9",
                "INSERT INTO t_info VALUES ('hnsw00_entry', 99)", "UPDATE t_info SET value = 2 WHERE key = 'format'",
                "DELETE FROM t_free", "DROP TABLE t_info", "DROP TABLE t_hnsw00",
                "ALTER TABLE t_rows RENAME TO r"]:
        msg = c.exec(sql)
        if msg is None or ("may not be modified" not in msg and "may not be dropped" not in msg
                           and "may not be altered" not in msg and "cannot create trigger" not in msg
                           and "read-only" not in msg):
            bad.append(f"  {sql}: {msg}")
    assert not bad, "shadow tables written in defensive mode:\n" + "\n".join(bad)
    # The table itself still works, every write path included.
    for sql in ["INSERT INTO t(rowid, e, genre) VALUES (3, '[3,3]', 'c')", "UPDATE t SET e = '[0,1]' WHERE rowid = 1",
                "UPDATE t SET rowid = 9 WHERE rowid = 2", "DELETE FROM t WHERE rowid = 3",
                "INSERT INTO t(t) VALUES ('ef_search=12')", "INSERT INTO t(t) VALUES ('integrity-check')",
                "SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 2"]:
        assert c.exec(sql) is None, sql
    assert c.exec("DROP TABLE t") is None
    c.close()


def test_not_usable_from_views_triggers_or_untrusted_schema():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2])")
    db.execute("INSERT INTO t(rowid, e) VALUES (1, '[1,2]')")
    db.execute("CREATE VIEW v AS SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 1")
    db.execute("CREATE VIEW vc AS SELECT vectordb_check('t') AS r")
    db.execute("CREATE TABLE log(x)")
    db.execute("CREATE TRIGGER tr AFTER INSERT ON log BEGIN DELETE FROM t; END")
    check_cases(db, [
        ("SELECT * FROM v", (), "unsafe use of virtual table"),
        ("SELECT * FROM vc", (), "unsafe use of vectordb_check()"),
        ("INSERT INTO log VALUES (1)", (), "unsafe use of virtual table"),
    ])
    assert one(db, "SELECT count(*) FROM t") == 1
    # With trusted_schema off the vec_* functions still work from views (INNOCUOUS).
    db.execute("PRAGMA trusted_schema = OFF")
    db.execute("CREATE VIEW vf AS SELECT vec_length('[1,2,3]') AS n")
    assert one(db, "SELECT n FROM vf") == 3


# ---- damaged shadow tables --------------------------------------------------------------

PROBES = [
    "SELECT rowid, distance FROM t WHERE e MATCH '[1,1]' AND k = 5",
    "SELECT rowid, distance FROM t WHERE e MATCH '[1,1]' AND k = 5 AND ef_search = 0",
    "SELECT rowid, distance FROM t WHERE e MATCH '[1,1]' AND k = 3 AND genre = 'a'",
    "SELECT rowid, vec_to_json(e), genre FROM t",
    "INSERT INTO t(rowid, e, genre) VALUES (500, '[2,2]', 'z')",
    "UPDATE t SET e = '[3,1]' WHERE rowid IN (1, 8, 17)",
    "DELETE FROM t WHERE rowid IN (2, 9, 18)",
]


def tmp_path(name):
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vdb_bad_inputs_{os.getpid()}_{name}.db")
    for suffix in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return path


def damaged(corruption):
    """A table of 20 rows (chunk_size 8: three chunks) with an HNSW graph,
    damaged by the SQL statements in corruption, on a new connection that
    has not used the table yet (so nothing of it is cached): what opening a
    damaged file looks like."""
    path = tmp_path("damaged")
    db = connect(EXT, path)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2] INDEXED BY hnsw(m=2, ef_construction=4), "
               "genre text, chunk_size=8)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(rowid, e, genre) VALUES (?, ?, ?)",
                   [(i, f32(i % 5, i // 5), "a" if i % 3 else "b") for i in range(1, 21)])
    db.execute("COMMIT")
    db.close()
    db = connect(EXT, path)
    db.execute("PRAGMA synchronous = OFF")
    for sql in corruption if isinstance(corruption, list) else [corruption]:
        db.execute(sql)
    return db


CORRUPTIONS = [
    # vector blobs
    ("UPDATE t_vectors00 SET vectors = substr(vectors, 1, 63) WHERE chunk_id = 1", "vector blob truncated"),
    ("UPDATE t_vectors00 SET vectors = vectors || x'00' WHERE chunk_id = 2", "vector blob oversized"),
    ("UPDATE t_vectors00 SET vectors = 'text' WHERE chunk_id = 1", "vector blob as text"),
    ("DELETE FROM t_vectors00 WHERE chunk_id = 3", "vector chunk missing"),
    # chunk bitmaps and slot rowids
    ("UPDATE t_chunks SET validity = x'ff00' WHERE chunk_id = 1", "validity oversized"),
    ("UPDATE t_chunks SET validity = x'' WHERE chunk_id = 1", "validity empty"),
    ("UPDATE t_chunks SET rowids = substr(rowids, 1, 8) WHERE chunk_id = 2", "slot rowids truncated"),
    ("UPDATE t_chunks SET validity = x'00' WHERE chunk_id = 1", "live rows in a chunk marked empty"),
    ("UPDATE t_chunks SET rowids = zeroblob(64) WHERE chunk_id = 1", "slots naming no row"),
    ("DELETE FROM t_chunks WHERE chunk_id = 2", "chunk missing"),
    ("INSERT INTO t_free VALUES (1)", "free list naming a full chunk"),
    # rows
    ("UPDATE t_rows SET chunk_offset = 8 WHERE rowid = 1", "slot offset past the chunk"),
    ("UPDATE t_rows SET chunk_offset = -1 WHERE rowid = 1", "negative slot offset"),
    ("UPDATE t_rows SET chunk_id = 77 WHERE rowid = 3", "row in a missing chunk"),
    ("DELETE FROM t_rows WHERE rowid = 4", "live slot without a row"),
    # graph rows
    # (format 3 links, vdb_format.h: per layer a varint count, then the ids
    # ascending as varint steps; node 3 has fewer than 128 links)
    ("UPDATE t_hnsw00 SET links = substr(links, 1, length(links) - 1) WHERE nid = 3", "graph links truncated"),
    ("UPDATE t_hnsw00 SET links = links || x'00' WHERE nid = 3", "graph links oversized"),
    ("UPDATE t_hnsw00 SET links = x'ff' || substr(links, 2) WHERE nid = 3", "graph link count above the cap"),
    ("UPDATE t_hnsw00 SET links = x'050102' WHERE nid = 3", "graph link count above the blob"),
    ("UPDATE t_hnsw00 SET links = x'0103' || zeroblob(level) WHERE nid = 3", "graph link to itself"),
    ("UPDATE t_hnsw00 SET links = x'01e707' || zeroblob(level) WHERE nid = 3", "graph link to a missing node"),
    ("UPDATE t_hnsw00 SET links = x'0100' || zeroblob(level) WHERE nid = 3", "graph link to nid 0"),
    ("UPDATE t_hnsw00 SET links = x'020101' || zeroblob(level) WHERE nid = 3", "graph link repeated"),
    ("UPDATE t_hnsw00 SET links = x'018080808080808080808001' || zeroblob(level) WHERE nid = 3",
     "graph link varint too long"),
    ("UPDATE t_hnsw00 SET links = x'01808080808080808080' || zeroblob(level) WHERE nid = 3",
     "graph link varint unterminated"),
    ("UPDATE t_hnsw00 SET links = x'02808080808080808040808080808080808040' || zeroblob(level) WHERE nid = 3",
     "graph link ids past 2^63"),
    ("UPDATE t_hnsw00 SET links = x'018100' || zeroblob(level) WHERE nid = 3", "graph link varint not shortest"),
    ("UPDATE t_hnsw00 SET links = 'text' WHERE nid = 3", "graph links as text"),
    ("UPDATE t_hnsw00 SET level = -1 WHERE nid = 3", "negative level"),
    ("UPDATE t_hnsw00 SET level = 16 WHERE nid = 3", "level above the maximum"),
    ("UPDATE t_hnsw00 SET level = level + 1 WHERE nid = 3", "level not matching the links blob"),
    ("UPDATE t_hnsw00 SET chunk_offset = 99 WHERE nid = 3", "node slot past the chunk"),
    ("UPDATE t_hnsw00 SET chunk_id = 99 WHERE nid = 3", "node in a missing chunk"),
    ("UPDATE t_hnsw00 SET rowid = 999 WHERE nid = 3", "node of a missing row"),
    ("DELETE FROM t_hnsw00 WHERE nid = 5", "node missing"),
    ("UPDATE t_hnsw00 SET links = zeroblob(level + 1) WHERE nid = 6", "node links erased"),
    # entry point and counters
    ("UPDATE t_info SET value = 999 WHERE key = 'hnsw00_entry'", "entry point missing"),
    ("UPDATE t_info SET value = 99 WHERE key = 'hnsw00_entry_level'", "entry level out of range"),
    ("UPDATE t_info SET value = 'x' WHERE key = 'hnsw00_entry_level'", "entry level not an integer"),
    ("DELETE FROM t_info WHERE key = 'hnsw00_entry_level'", "entry level missing"),
    ("UPDATE t_info SET value = 0 WHERE key = 'hnsw00_next_nid'", "next nid zero"),
    ("UPDATE t_info SET value = 3 WHERE key = 'hnsw00_next_nid'", "next nid reused"),
    # stored settings
    ("INSERT INTO t_info VALUES ('ef_search', -5)", "stored ef_search negative"),
    ("INSERT INTO t_info VALUES ('ef_search', 1000000000)", "stored ef_search huge"),
    ("INSERT INTO t_info VALUES ('cache_mb', -1)", "stored cache_mb negative"),
    ("INSERT INTO t_info VALUES ('cache_mb', 'lots')", "stored cache_mb text"),
]


def test_damaged_shadow_tables():
    bad = []
    for corruption, what in CORRUPTIONS:
        db = damaged(corruption)
        # integrity-check finds the damage before anything else touches it...
        check = one(db, "SELECT vectordb_check('t')")
        if check == "ok":
            bad.append(f"  {what}: vectordb_check says ok")
        elif "vectordb table t is corrupt" not in check:
            bad.append(f"  {what}: vectordb_check says {check!r}")
        db.close()
        # ...and every use of the table either works or says it is corrupt.
        db = damaged(corruption)
        for sql in PROBES + ["INSERT INTO t(t) VALUES ('integrity-check')"]:
            got = outcome(db, sql)
            if got is None:
                continue
            msg, code = got
            if code != "SQLITE_CORRUPT_VTAB" or "vectordb table t is corrupt" not in msg:
                bad.append(f"  {what}: {sql!r} failed with {code} {msg!r}")
        db.close()
        tmp_path("damaged")             # removes the files
    assert not bad, "damage not reported as SQLITE_CORRUPT_VTAB:\n" + "\n".join(bad)


def test_damaged_format_and_layout():
    # Checked when the table is connected: the message says what is wrong.
    for sql, frag, code in [
        ("UPDATE t_info SET value = 4 WHERE key = 'format'", "has storage format 4; this build reads formats 1 to 3",
         "SQLITE_ERROR"),
        ("DELETE FROM t_info WHERE key = 'format'", "has storage format -1", "SQLITE_CORRUPT_VTAB"),
        ("UPDATE t_info SET value = 'chunk=16' WHERE key = 'layout'",
         "the declaration does not match the stored layout", "SQLITE_CORRUPT_VTAB"),
    ]:
        path = tmp_path("format")
        db = connect(EXT, path)
        db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], chunk_size=8)")
        db.execute(sql)
        db.close()
        db = connect(EXT, path)
        check_cases(db, [("SELECT * FROM t", (), frag, code)])
        db.close()
        os.remove(path)


# ---- valid churn keeps the index sound ---------------------------------------------------

def test_churn_keeps_every_row_reachable():
    """Inserts, replaces, updates and deletes of near-duplicate vectors in a
    graph of the smallest m (2: three links on layer 0 before it is full)
    once left rows that no search could reach: full nodes dropped links that
    were not redundant, and a delete could cut a group of its neighbours
    off. integrity-check verifies that every node is reachable from the
    entry point on layer 0."""
    vals = [-1, 0, 1, 0.5]
    bad = []
    for seed in range(12):
        rnd = random.Random(seed)
        db = fresh()
        db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2] INDEXED BY hnsw(m=2, ef_construction=4), "
                   "chunk_size=8)")
        for step in range(1000):
            r, rid = rnd.random(), rnd.randrange(1, 300)
            v = f32(rnd.choice(vals), rnd.choice(vals))
            if r < 0.55:
                db.execute("INSERT OR REPLACE INTO t(rowid, e) VALUES (?, ?)", (rid, v))
            elif r < 0.8:
                db.execute("DELETE FROM t WHERE rowid = ?", (rid,))
            else:
                db.execute("UPDATE t SET e = ? WHERE rowid = ?", (v, rid))
            if step % 100 == 99:
                check = one(db, "SELECT vectordb_check('t')")
                if check != "ok":
                    bad.append(f"  seed {seed}, after {step + 1} writes: {check}")
                    break
        db.close()
    assert not bad, "valid writes broke the graph:\n" + "\n".join(bad)


# ---- bounds -----------------------------------------------------------------------------

class Meter:
    """SQLite's allocation high-water mark (vectordb allocates through
    sqlite3_malloc) and VM steps of a statement, nested ones included."""

    def __init__(self, db):
        self.db = db
        self.lib = sqlite_lib()
        if self.lib:
            self.lib.sqlite3_memory_highwater.restype = ctypes.c_int64
            self.lib.sqlite3_memory_used.restype = ctypes.c_int64

    def measure(self, sql, params=()):
        """(peak bytes above the start, VM steps in thousands, error or None)."""
        steps = [0]

        def tick():
            steps[0] += 1
            return 0
        self.db.set_progress_handler(tick, 1000)
        base = 0
        if self.lib:
            base = self.lib.sqlite3_memory_used()
            self.lib.sqlite3_memory_highwater(1)
        err = None
        try:
            self.db.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            err = str(e)
        peak = self.lib.sqlite3_memory_highwater(0) - base if self.lib else 0
        self.db.set_progress_handler(None, 0)
        return peak, steps[0], err


MB = 1 << 20


def test_no_input_allocates_or_steps_without_bound():
    db = knn_table(True)
    m = Meter(db)
    big_json = "[" + ",".join(["1"] * 200000) + "]"
    bad = []
    for sql, params, max_mb, max_ksteps in [
        # Oversized vectors are refused after the limit, not after reading it all.
        ("SELECT vec_f32(?)", (big_json,), 1, 5),
        ("SELECT vec_length(?)", (b"\0" * 4 * 300000,), 3, 5),
        ("SELECT rowid FROM t WHERE e MATCH ? AND k = 3", (big_json,), 1, 5),
        ("INSERT INTO t(e) VALUES (?)", (big_json,), 1, 5),
        # The largest k and ef_search cost what the table holds, not their size.
        ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 16384", (), 2, 20),
        ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 16384 AND ef_search = 4096", (), 2, 20),
        ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 16384 AND ef_search = 0", (), 2, 20),
        ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 16384 AND distance < 1e300", (), 2, 20),
        ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 1099511627776", (), 1, 5),
        # A huge IN list is refused at SQLite's variable limit.
        ("SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 3 AND rowid IN (" +
         ",".join(str(i) for i in range(40000)) + ")", (), 64, 2000),
    ]:
        peak, ksteps, err = m.measure(sql, params)
        if peak > max_mb * MB or ksteps > max_ksteps:
            bad.append(f"  {sql[:70]!r}: {peak / MB:.1f} MiB, {ksteps}k steps ({err})")
    # Damaged graph rows cannot make a query walk or allocate without bound.
    for corruption in ["UPDATE t_hnsw00 SET links = x'ffff' || substr(links, 3)",
                       "UPDATE t_info SET value = 15 WHERE key = 'hnsw00_entry_level'",
                       "UPDATE t_info SET value = 9223372036854775807 WHERE key = 'hnsw00_next_nid'",
                       "UPDATE t_hnsw00 SET links = x'01ffffff07' || zeroblob(level)",
                       "INSERT INTO t_info VALUES ('ef_search', 2147483647)",
                       "INSERT INTO t_info VALUES ('cache_mb', 2147483647)"]:
        d = knn_table(True)
        d.execute(corruption)
        dm = Meter(d)
        for sql in ["SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 10",
                    "INSERT INTO t(rowid, e) VALUES (99, '[3,3]')",
                    "DELETE FROM t WHERE rowid < 4",
                    "SELECT vectordb_check('t')"]:
            peak, ksteps, err = dm.measure(sql)
            if peak > 2 * MB or ksteps > 50:
                bad.append(f"  after {corruption[:50]!r}: {sql!r}: {peak / MB:.1f} MiB, {ksteps}k steps ({err})")
        d.close()
    assert not bad, "statements that cost more than their input warrants:\n" + "\n".join(bad)
    if m.lib is None:
        print("note: allocation bounds not measured (a different libsqlite3 is in use)")


run(globals())
