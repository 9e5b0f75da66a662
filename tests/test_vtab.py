"""SQL-level tests of the vectordb virtual table.

usage: /usr/bin/python3 tests/test_vtab.py EXTENSION_PATH [unused] [name-filter]
"""
import atexit
import math
import os
import random
import shutil
import sqlite3
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, expect_error, one, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
TMP = tempfile.mkdtemp(prefix="vectordb-test-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)


def f32(xs):
    return struct.pack(f"<{len(xs)}f", *xs)


def fresh():
    return connect(EXT)


def l2(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def rounded(xs):
    return list(struct.unpack(f"<{len(xs)}f", f32(xs)))


def brute_force(rows, q, k, metric=l2, keep=lambda r: True):
    """Exact top-k as (rowid, distance) sorted by distance then rowid."""
    hits = sorted((metric(v, q), rid) for rid, v in rows.items() if keep(rid))
    return [(rid, d) for d, rid in hits[:k]]


def knn(db, q, k, where="", params=(), table="t", col="e"):
    sql = f"SELECT rowid, distance FROM {table} WHERE {col} MATCH ? AND k = ? {where}"
    return db.execute(sql, (q, k) + tuple(params)).fetchall()


def same_hits(got, want, tol=1e-5):
    assert [r for r, _ in got] == [r for r, _ in want], (got[:5], want[:5])
    for (_, a), (_, b) in zip(got, want):
        assert abs(a - b) <= tol * max(1.0, abs(b)), (a, b)


def shadow_tables(db, name):
    return sorted(r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ? ESCAPE '\\'",
        (name.replace("_", "\\_") + "\\_%",)))


# ---- declaration -----------------------------------------------------------------

def test_declared_columns_match_sqlite_vec_shape():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE items USING vectordb(id integer primary key, "
               "embedding float[4] distance_metric=cosine, user_id integer partition key, "
               "genre text, +body text)")
    cols = [r[1] for r in db.execute("PRAGMA table_xinfo(items)")]
    assert cols == ["id", "embedding", "user_id", "genre", "body", "items", "distance", "k", "ef_search"], cols
    hidden = [r[1] for r in db.execute("PRAGMA table_xinfo(items)") if r[6]]
    assert hidden == ["items", "distance", "k", "ef_search"], hidden
    assert shadow_tables(db, "items") == ["items_chunks", "items_free", "items_info",
                                          "items_rows", "items_vectors00"]


def test_declaration_errors_name_the_problem():
    db = fresh()
    cases = [
        ("e float64[4]", 'unknown column type "float64"'),
        ("e float[4] distance_metric=manhattan", 'unknown distance_metric "manhattan"'),
        ("e float[9000]", "from 1 to 8192"),
        ("e float[4], chunk_size=10", "multiple of 8"),
        ("e float[4], colour=red", 'unknown table option "colour"'),
        ("genre text", "at least one vector column"),
        ("e float[4], e text", "duplicate"),
        ("e int8[4] INDEXED BY hnsw()", "needs a float[N] column"),
    ]
    for decl, fragment in cases:
        expect_error(db, f"CREATE VIRTUAL TABLE x USING vectordb({decl})", fragment)
        assert shadow_tables(db, "x") == [], "a failed CREATE leaves no shadow tables"


# ---- writes and reads --------------------------------------------------------------

def test_insert_select_roundtrip_all_column_kinds():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(id integer primary key, e float[3], "
               "q int8[4], b bit[16], part text partition key, genre text, year integer, "
               "score float, flag boolean, +body text, +extra)")
    db.execute("INSERT INTO t(id, e, q, b, part, genre, year, score, flag, body, extra) "
               "VALUES (7, '[1.5, -2, 3]', vec_int8('[1,-2,3,-4]'), vec_bit(x'0f80'), 'p1', "
               "'drama', 1999, 4.5, 1, 'text', x'0102')")
    row = db.execute("SELECT id, vec_to_json(e), vec_to_json(q), vec_type(q), vec_type(b), hex(b), "
                     "part, genre, year, score, flag, body, extra, vec_type(e) FROM t").fetchone()
    assert row == (7, "[1.5,-2.0,3.0]", "[1,-2,3,-4]", "int8", "bit", "0F80", "p1", "drama", 1999,
                   4.5, 1, "text", b"\x01\x02", "float32"), row
    # Integers stored into a float column read back as REAL; NULL metadata is allowed.
    db.execute("INSERT INTO t(id, e, q, b, score) VALUES (8, '[0,0,1]', vec_int8('[0,0,0,1]'), "
               "vec_bit(x'0000'), 3)")
    assert db.execute("SELECT score, typeof(score), genre, year FROM t WHERE id = 8").fetchone() == \
        (3.0, "real", None, None)
    assert db.execute("SELECT rowid FROM t ORDER BY rowid").fetchall() == [(7,), (8,)]


def test_write_errors_and_nothing_written():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[3], year integer, flag boolean, "
               "+note text)")
    expect_error(db, "INSERT INTO t(e) VALUES ('[1,2]')", "column e expects 3 dimensions, got 2")
    expect_error(db, "INSERT INTO t(e) VALUES (NULL)", "vector column e of t cannot be NULL")
    expect_error(db, "INSERT INTO t(e) VALUES ('[1,2,')", "vector for column e", "expected a number at offset 5")
    expect_error(db, "INSERT INTO t(e) VALUES (vec_int8('[1,2,3]'))", "expected a float32 vector but got a int8")
    expect_error(db, "INSERT INTO t(e, year) VALUES ('[1,2,3]', 'x')", "column year of t expects integer, got TEXT")
    expect_error(db, "INSERT INTO t(e, year) VALUES ('[1,2,3]', 1.5)", "expects integer, got REAL")
    expect_error(db, "INSERT INTO t(e, flag) VALUES ('[1,2,3]', 2)", "boolean (0 or 1)")
    expect_error(db, "INSERT INTO t(e, note) VALUES ('[1,2,3]', 5)", "column note of t expects text")
    expect_error(db, "INSERT INTO t(rowid, e) VALUES ('a', '[1,2,3]')", "datatype mismatch")
    expect_error(db, "INSERT INTO t(e) VALUES (?)", "non-finite", params=(f32([1, float("nan"), 2]),))
    assert one(db, "SELECT count(*) FROM t") == 0
    assert one(db, "SELECT count(*) FROM t_rows") == 0
    assert one(db, "SELECT count(*) FROM t_chunks") == 0


def test_upsert_and_conflicts():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], tag text)")
    db.execute("INSERT INTO t(rowid, e, tag) VALUES (1, '[1,1]', 'first')")
    expect_error(db, "INSERT INTO t(rowid, e, tag) VALUES (1, '[2,2]', 'dup')", "UNIQUE constraint failed: t.rowid")
    db.execute("INSERT OR IGNORE INTO t(rowid, e, tag) VALUES (1, '[2,2]', 'ignored')")
    assert db.execute("SELECT tag, vec_to_json(e) FROM t").fetchall() == [("first", "[1.0,1.0]")]
    db.execute("INSERT OR REPLACE INTO t(rowid, e, tag) VALUES (1, '[3,3]', 'replaced')")
    assert db.execute("SELECT rowid, tag, vec_to_json(e) FROM t").fetchall() == [(1, "replaced", "[3.0,3.0]")]
    # REPLACE frees the old slot: one row, one live slot.
    assert one(db, "SELECT count(*) FROM t_rows") == 1
    db.execute("REPLACE INTO t(rowid, e, tag) VALUES (1, '[4,4]', 'again')")
    assert one(db, "SELECT tag FROM t WHERE rowid = 1") == "again"


def test_text_primary_key():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE docs USING vectordb(id text primary key, e float[2])")
    db.execute("INSERT INTO docs(id, e) VALUES ('alpha', '[0,1]'), ('beta', '[1,0]')")
    assert db.execute("SELECT id, vec_to_json(e) FROM docs WHERE id = 'beta'").fetchall() == [("beta", "[1.0,0.0]")]
    got = knn(db, "[0.9,0.1]", 1, table="docs")
    assert got[0][0] == 2 and abs(got[0][1] - math.sqrt(0.02)) < 1e-6, got
    assert db.execute("SELECT id FROM docs WHERE e MATCH '[0.9,0.1]' AND k = 1").fetchall() == [("beta",)]
    expect_error(db, "INSERT INTO docs(id, e) VALUES ('alpha', '[5,5]')", "UNIQUE constraint failed: docs.id")
    expect_error(db, "INSERT INTO docs(id, e) VALUES (NULL, '[5,5]')", "primary key id of docs must be text")
    expect_error(db, "INSERT INTO docs(id, e) VALUES (5, '[5,5]')", "must be text")
    db.execute("INSERT OR REPLACE INTO docs(id, e) VALUES ('alpha', '[5,5]')")
    assert db.execute("SELECT id, vec_to_json(e) FROM docs ORDER BY id").fetchall() == \
        [("alpha", "[5.0,5.0]"), ("beta", "[1.0,0.0]")]
    db.execute("UPDATE docs SET id = 'gamma' WHERE id = 'beta'")
    assert sorted(r[0] for r in db.execute("SELECT id FROM docs")) == ["alpha", "gamma"]
    expect_error(db, "UPDATE docs SET id = 'alpha' WHERE id = 'gamma'", "UNIQUE constraint failed: docs.id")
    assert db.execute("SELECT id FROM docs WHERE id IN ('alpha', 'zeta')").fetchall() == [("alpha",)]


def test_update_every_kind_of_column():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(id integer primary key, e float[2], f float[2], "
               "genre text, +body text)")
    db.execute("INSERT INTO t VALUES (1, '[1,0]', '[0,1]', 'a', 'x')")
    db.execute("UPDATE t SET genre = 'b', body = 'y' WHERE id = 1")
    db.execute("UPDATE t SET f = '[2,2]' WHERE id = 1")
    assert db.execute("SELECT vec_to_json(e), vec_to_json(f), genre, body FROM t").fetchone() == \
        ("[1.0,0.0]", "[2.0,2.0]", "b", "y")
    # Changing the rowid (through rowid or the integer primary key) moves the row.
    db.execute("UPDATE t SET id = 5 WHERE id = 1")
    assert db.execute("SELECT id, rowid, vec_to_json(e) FROM t").fetchall() == [(5, 5, "[1.0,0.0]")]
    db.execute("UPDATE t SET rowid = 6 WHERE rowid = 5")
    assert db.execute("SELECT id FROM t").fetchall() == [(6,)]
    assert knn(db, "[1,0]", 1) == [(6, 0.0)]
    db.execute("INSERT INTO t VALUES (7, '[0,0]', '[0,0]', NULL, NULL)")
    expect_error(db, "UPDATE t SET id = 7 WHERE id = 6", "UNIQUE constraint failed: t.rowid")
    expect_error(db, "UPDATE t SET e = '[1,2,3]' WHERE id = 6", "expects 2 dimensions, got 3")
    expect_error(db, "UPDATE t SET e = NULL WHERE id = 6", "cannot be NULL")
    assert db.execute("SELECT vec_to_json(e) FROM t WHERE id = 6").fetchone() == ("[1.0,0.0]",)


def test_delete_and_space_reuse():
    db = connect(EXT, os.path.join(TMP, "churn.db"))
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[64], chunk_size=64)")
    rnd = random.Random(5)

    def fill(start, n):
        db.execute("BEGIN")
        db.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)",
                       [(start + i, f32([rnd.random() for _ in range(64)])) for i in range(n)])
        db.execute("COMMIT")

    fill(0, 1000)
    pages_full = one(db, "PRAGMA page_count")
    live = set(range(1000))
    for cycle in range(5):
        gone = rnd.sample(sorted(live), 500)
        db.execute("BEGIN")
        db.executemany("DELETE FROM t WHERE rowid = ?", [(r,) for r in gone])
        db.execute("COMMIT")
        live -= set(gone)
        fill(10000 * (cycle + 1), 500)
        live |= set(range(10000 * (cycle + 1), 10000 * (cycle + 1) + 500))
        assert one(db, "SELECT count(*) FROM t") == 1000
        assert {r[0] for r in db.execute("SELECT rowid FROM t")} == live
    # Holes are refilled: chunks stay full and the file does not keep growing.
    assert one(db, "SELECT count(*) FROM t_chunks") == 1000 // 64 + 1
    assert one(db, "PRAGMA page_count") <= pages_full * 1.25, (one(db, "PRAGMA page_count"), pages_full)
    db.execute("DELETE FROM t")
    assert one(db, "SELECT count(*) FROM t_chunks") == 0
    assert one(db, "SELECT count(*) FROM t_vectors00") == 0


def test_last_insert_rowid_is_the_users():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2])")
    db.execute("INSERT INTO t(e) VALUES ('[1,1]')")
    db.execute("INSERT INTO t(rowid, e) VALUES (41, '[1,1]')")
    assert one(db, "SELECT last_insert_rowid()") == 41
    db.execute("INSERT INTO t(e) VALUES ('[1,1]')")
    assert one(db, "SELECT last_insert_rowid()") == 42
    db.execute("DELETE FROM t WHERE rowid = 1")
    db.execute("UPDATE t SET e = '[2,2]' WHERE rowid = 41")
    assert one(db, "SELECT last_insert_rowid()") == 42


# ---- KNN -----------------------------------------------------------------------------

def make_table(db, n=600, dim=12, metric="l2", seed=1, chunk=64):
    rnd = random.Random(seed)
    db.execute(f"CREATE VIRTUAL TABLE t USING vectordb(e float[{dim}] distance_metric={metric}, "
               f"genre text, year integer, part integer partition key, +note text, chunk_size={chunk})")
    rows, meta = {}, {}
    db.execute("BEGIN")
    for rid in range(1, n + 1):
        v = rounded([rnd.gauss(0, 1) for _ in range(dim)])
        genre = rnd.choice(["a", "b", "c", None])
        year = rnd.randint(1990, 2020)
        part = rid % 3
        rows[rid] = v
        meta[rid] = (genre, year, part)
        db.execute("INSERT INTO t(rowid, e, genre, year, part, note) VALUES (?,?,?,?,?,?)",
                   (rid, f32(v), genre, year, part, f"n{rid}"))
    db.execute("COMMIT")
    return rows, meta, rnd


def test_knn_matches_brute_force():
    db = fresh()
    rows, meta, rnd = make_table(db)
    for _ in range(30):
        q = rounded([rnd.gauss(0, 1) for _ in range(12)])
        for k in (1, 10, 50):
            same_hits(knn(db, f32(q), k), brute_force(rows, q, k))
    # k larger than the table, and k = 0.
    assert len(knn(db, f32(q), 5000)) == len(rows)
    assert knn(db, f32(q), 0) == []
    # ORDER BY distance is satisfied by the table itself.
    plan = " ".join(r[3] for r in db.execute(
        "EXPLAIN QUERY PLAN SELECT rowid FROM t WHERE e MATCH ? AND k = 3 ORDER BY distance", (f32(q),)))
    assert "TEMP B-TREE" not in plan.upper(), plan


def test_knn_ties_break_by_rowid():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2])")
    for rid in (9, 3, 7, 1, 5):
        db.execute("INSERT INTO t(rowid, e) VALUES (?, '[1,1]')", (rid,))
    assert [r[0] for r in knn(db, "[0,0]", 3)] == [1, 3, 5]


def test_knn_with_filters_returns_k_matching_rows():
    db = fresh()
    rows, meta, rnd = make_table(db)
    q = rounded([rnd.gauss(0, 1) for _ in range(12)])
    cases = [
        ("AND genre = 'a'", (), lambda r: meta[r][0] == "a"),
        ("AND genre != 'a'", (), lambda r: meta[r][0] not in ("a", None)),
        ("AND genre IS NULL", (), lambda r: meta[r][0] is None),
        ("AND genre IS NOT NULL AND year >= 2010", (), lambda r: meta[r][0] is not None and meta[r][1] >= 2010),
        ("AND year BETWEEN 1995 AND 1997", (), lambda r: 1995 <= meta[r][1] <= 1997),
        ("AND year < ? AND part = ?", (2000, 2), lambda r: meta[r][1] < 2000 and meta[r][2] == 2),
        ("AND genre IN ('b', 'c')", (), lambda r: meta[r][0] in ("b", "c")),
        ("AND year IN (1990, 2000, 2020)", (), lambda r: meta[r][1] in (1990, 2000, 2020)),
        ("AND rowid IN (5, 10, 15, 20, 25, 30, 35)", (), lambda r: r in (5, 10, 15, 20, 25, 30, 35)),
        ("AND rowid > 500", (), lambda r: r > 500),
        ("AND genre LIKE 'A'", (), lambda r: meta[r][0] == "a"),
        ("AND note GLOB 'n1*'", (), lambda r: str(r).startswith("1")),
        ("AND part = 1 AND genre = 'c' AND rowid IN (SELECT value FROM json_each('[3,6,9,12,15,18,21,24]'))",
         (), lambda r: r in (3, 6, 9, 12, 15, 18, 21, 24) and meta[r][2] == 1 and meta[r][0] == "c"),
    ]
    for where, params, keep in cases:
        want = brute_force(rows, q, 10, keep=keep)
        got = knn(db, f32(q), 10, where, params)
        same_hits(got, want)
        assert len(got) == min(10, sum(1 for r in rows if keep(r))), where


def test_limit_form_by_sqlite_version():
    db = fresh()
    rows, meta, rnd = make_table(db, n=200)
    q = f32(rounded([rnd.gauss(0, 1) for _ in range(12)]))
    want = knn(db, q, 12)
    base = "SELECT rowid, distance FROM t WHERE e MATCH ?"
    if sqlite3.sqlite_version_info >= (3, 41, 0):
        assert db.execute(base + " ORDER BY distance LIMIT 5", (q,)).fetchall() == want[:5]
        # With both, the smaller bound wins.
        assert db.execute(base + " AND k = 3 ORDER BY distance LIMIT 5", (q,)).fetchall() == want[:3]
        assert db.execute(base + " AND k = 5 ORDER BY distance LIMIT 3", (q,)).fetchall() == want[:3]
        assert db.execute(base + " ORDER BY distance LIMIT 3 OFFSET 2", (q,)).fetchall() == want[2:5]
        got = db.execute(base + " AND genre = 'a' ORDER BY distance LIMIT 4", (q,)).fetchall()
        assert got == knn(db, q, 4, "AND genre = 'a'")
    else:
        expect_error(db, base + " ORDER BY distance LIMIT 5", 'needs "AND k = ?"',
                     "SQLite before 3.41 does not pass LIMIT", params=(q,))


def test_knn_distance_ranges():
    db = fresh()
    rows, meta, rnd = make_table(db, n=300)
    q = rounded([rnd.gauss(0, 1) for _ in range(12)])
    all_hits = knn(db, f32(q), 300)
    same_hits(all_hits, brute_force(rows, q, 300))
    lo, hi = all_hits[20][1], all_hits[40][1]
    got = knn(db, f32(q), 100, "AND distance > ? AND distance <= ?", (lo, hi))
    assert [r for r, _ in got] == [r for r, d in all_hits if lo < d <= hi]
    # Pagination by distance: the next page starts after the last distance seen.
    page1 = knn(db, f32(q), 5)
    page2 = knn(db, f32(q), 5, "AND distance > ?", (page1[-1][1],))
    assert [r for r, _ in page1 + page2] == [r for r, _ in all_hits[:10]]
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH ? AND k = 3 AND distance < 'x'",
                 "compared with a number", params=(f32(q),))


def test_knn_metrics_and_types():
    db = fresh()
    rnd = random.Random(9)
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(c float[8] distance_metric=cosine, "
               "d float[8] distance_metric=dot, m float[8] distance_metric=l1, "
               "q int8[8], b bit[64])")
    data = {}
    for rid in range(1, 201):
        c, d, m = (rounded([rnd.uniform(-1, 1) for _ in range(8)]) for _ in range(3))
        qv = [rnd.randint(-128, 127) for _ in range(8)]
        bv = bytes(rnd.randrange(256) for _ in range(8))
        data[rid] = (c, d, m, qv, bv)
        db.execute("INSERT INTO t(rowid, c, d, m, q, b) VALUES (?,?,?,?,vec_int8(?),vec_bit(?))",
                   (rid, f32(c), f32(d), f32(m), bytes(x & 0xff for x in qv), bv))
    qc, qd, qm = (rounded([rnd.uniform(-1, 1) for _ in range(8)]) for _ in range(3))
    qq = [rnd.randint(-128, 127) for _ in range(8)]
    qb = bytes(rnd.randrange(256) for _ in range(8))

    def cos(a, b):
        return 1 - sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    def ham(a, b):
        return sum(bin(x ^ y).count("1") for x, y in zip(a, b))

    same_hits(knn(db, f32(qc), 10, col="c"), brute_force({r: v[0] for r, v in data.items()}, qc, 10, cos))
    same_hits(knn(db, f32(qd), 10, col="d"),
              brute_force({r: v[1] for r, v in data.items()}, qd, 10, lambda a, b: -sum(x * y for x, y in zip(a, b))))
    same_hits(knn(db, f32(qm), 10, col="m"),
              brute_force({r: v[2] for r, v in data.items()}, qm, 10, lambda a, b: sum(abs(x - y) for x, y in zip(a, b))))
    same_hits(knn(db, bytes(x & 0xff for x in qq), 10, col="q"), brute_force({r: v[3] for r, v in data.items()}, qq, 10))
    # JSON works for int8 columns too; bit columns take BLOBs.
    same_hits(knn(db, str(qq), 10, col="q"), brute_force({r: v[3] for r, v in data.items()}, qq, 10))
    got = knn(db, qb, 10, col="b")
    want = sorted((ham(v[4], qb), r) for r, v in data.items())[:10]
    assert [(r, float(d)) for d, r in want] == got
    expect_error(db, "SELECT rowid FROM t WHERE c MATCH '[0,0,0,0,0,0,0,0]' AND k = 3", "all zeros")


def test_knn_query_errors():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[3], genre text)")
    db.execute("INSERT INTO t(e, genre) VALUES ('[1,2,3]', 'a')")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2,3]'", 'needs "AND k = ?"')
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2]' AND k = 3", "has 2 dimensions; the column has 3")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2' AND k = 3", "query vector for column e", "missing ']'")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH NULL AND k = 3", "MATCH vector for e is NULL")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2,3]' AND k = 99999", "k must be from 0 to 16384")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2,3]' AND k = -1", "k must be from 0 to 16384")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2,3]' AND k = 'ten'", "k must be an integer")
    expect_error(db, "SELECT rowid FROM t WHERE genre MATCH 'a' AND k = 1", "MATCH works on vector columns only")
    assert knn(db, "[1,2,3]", 16384) == [(1, 0.0)]


def test_knn_in_joins_and_subqueries():
    db = fresh()
    rows, meta, rnd = make_table(db, n=200)
    db.execute("CREATE TABLE queries(id INTEGER PRIMARY KEY, v BLOB)")
    qs = {i: rounded([rnd.gauss(0, 1) for _ in range(12)]) for i in range(1, 4)}
    db.executemany("INSERT INTO queries VALUES (?, ?)", [(i, f32(v)) for i, v in qs.items()])
    got = db.execute("SELECT queries.id, t.rowid FROM queries JOIN t ON t.e MATCH queries.v AND t.k = 2 "
                     "ORDER BY queries.id, t.distance").fetchall()
    want = [(i, r) for i in sorted(qs) for r, _ in brute_force(rows, qs[i], 2)]
    assert got == want, (got, want)
    got = db.execute("SELECT rowid FROM t WHERE e MATCH (SELECT v FROM queries WHERE id = 2) AND k = 3").fetchall()
    assert [r[0] for r in got] == [r for r, _ in brute_force(rows, qs[2], 3)]


def test_point_lookups_and_scans():
    db = fresh()
    rows, meta, rnd = make_table(db, n=100)
    assert one(db, "SELECT count(*) FROM t") == 100
    assert one(db, "SELECT genre IS ? FROM t WHERE rowid = 42", meta[42][0]) == 1
    assert db.execute("SELECT rowid FROM t WHERE rowid = 1000").fetchall() == []
    assert db.execute("SELECT rowid FROM t WHERE year = ? ORDER BY rowid", (meta[7][1],)).fetchall() == \
        [(r,) for r in sorted(rows) if meta[r][1] == meta[7][1]]
    plan = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM t WHERE rowid = 5"))
    assert "VIRTUAL TABLE" in plan.upper(), plan


# ---- transactions ------------------------------------------------------------------------

def digest(db, table="t"):
    """Everything a table holds, and its shadow tables, as comparable data."""
    rows = db.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
    shadows = [db.execute(f"SELECT * FROM {s} ORDER BY 1").fetchall() for s in shadow_tables(db, table)]
    return rows, shadows


def test_rollback_and_savepoints():
    db = fresh()
    rows, meta, rnd = make_table(db, n=150)
    before = digest(db)
    db.execute("BEGIN")
    db.execute("INSERT INTO t(e, genre) VALUES (?, 'new')", (f32([0.5] * 12),))
    db.execute("DELETE FROM t WHERE rowid < 50")
    db.execute("UPDATE t SET genre = 'zz', e = ? WHERE rowid = 100", (f32([9] * 12),))
    db.execute("ROLLBACK")
    assert digest(db) == before
    db.execute("BEGIN")
    db.execute("DELETE FROM t WHERE rowid = 1")
    mid = digest(db)
    db.execute("SAVEPOINT s1")
    db.execute("DELETE FROM t WHERE rowid BETWEEN 2 AND 60")
    db.execute("INSERT INTO t(rowid, e) VALUES (9999, ?)", (f32([1] * 12),))
    db.execute("ROLLBACK TO s1")
    assert digest(db) == mid
    db.execute("RELEASE s1")
    db.execute("COMMIT")
    assert digest(db) == mid
    assert one(db, "SELECT count(*) FROM t") == 149


def test_failed_statement_inside_transaction_leaves_nothing():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], year integer)")
    db.execute("CREATE TABLE src(id INTEGER PRIMARY KEY, v, y)")
    db.executemany("INSERT INTO src VALUES (?, ?, ?)",
                   [(1, "[1,1]", 2001), (2, "[2,2]", 2002), (3, "[3]", 2003), (4, "[4,4]", 2004)])
    db.execute("BEGIN")
    db.execute("INSERT INTO t(rowid, e, year) VALUES (100, '[0,0]', 2000)")
    before = digest(db)
    # Single-row statements that fail validation.
    expect_error(db, "INSERT INTO t(e, year) VALUES ('[1,1]', 'nope')", "expects integer")
    expect_error(db, "INSERT INTO t(rowid, e) VALUES (100, '[5,5]')", "UNIQUE")
    # A multi-row statement whose third row fails.
    expect_error(db, "INSERT INTO t(rowid, e, year) SELECT id, v, y FROM src", "expects 2 dimensions")
    assert digest(db) == before
    db.execute("COMMIT")
    assert db.execute("SELECT rowid FROM t").fetchall() == [(100,)]


def test_two_connections_see_committed_state():
    for mode in ("wal", "delete"):
        path = os.path.join(TMP, f"two-{mode}.db")
        a = connect(EXT, path)
        a.execute(f"PRAGMA journal_mode={mode}")
        a.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], tag text)")
        b = connect(EXT, path)
        b.execute("PRAGMA busy_timeout = 5000")
        a.execute("INSERT INTO t(rowid, e, tag) VALUES (1, '[0,0]', 'one')")
        assert knn(b, "[0,0]", 5) == [(1, 0.0)]
        a.execute("BEGIN")
        a.execute("INSERT INTO t(rowid, e, tag) VALUES (2, '[0,0.5]', 'two')")
        a.execute("UPDATE t SET tag = 'uno' WHERE rowid = 1")
        if mode == "wal":
            # Readers keep seeing the last committed state while a writes.
            assert knn(b, "[0,0]", 5) == [(1, 0.0)]
            assert one(b, "SELECT tag FROM t WHERE rowid = 1") == "one"
        a.execute("COMMIT")
        assert knn(b, "[0,0]", 5) == [(1, 0.0), (2, 0.5)]
        assert one(b, "SELECT tag FROM t WHERE rowid = 1") == "uno"
        b.execute("DELETE FROM t WHERE rowid = 1")
        assert knn(a, "[0,0]", 5) == [(2, 0.5)]
        a.close()
        b.close()


# ---- schema operations ---------------------------------------------------------------------

def test_rename_drop_vacuum_reopen():
    path = os.path.join(TMP, "schema.db")
    db = connect(EXT, path)
    rows, meta, rnd = make_table(db, n=120)
    q = rounded([rnd.gauss(0, 1) for _ in range(12)])
    want = brute_force(rows, q, 5)
    db.execute("ALTER TABLE t RENAME TO items")
    assert shadow_tables(db, "t") == []
    assert shadow_tables(db, "items") == ["items_chunks", "items_free", "items_info", "items_rows",
                                          "items_vectors00"]
    same_hits(knn(db, f32(q), 5, table="items"), want)
    db.execute("DELETE FROM items WHERE rowid = ?", (want[0][0],))
    db.execute("INSERT INTO items(rowid, e) VALUES (?, ?)", (want[0][0], f32(rows[want[0][0]])))
    db.execute("VACUUM")
    same_hits(knn(db, f32(q), 5, table="items"), want)
    db.close()
    db = connect(EXT, path)
    same_hits(knn(db, f32(q), 5, table="items"), want)
    assert one(db, "SELECT count(*) FROM items") == 120
    db.execute("DROP TABLE items")
    assert shadow_tables(db, "items") == []
    db.close()


def test_partition_key_indexes_survive_renames():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], user_id integer partition key, "
               "tenant text partition key)")
    db.executemany("INSERT INTO t(rowid, e, user_id, tenant) VALUES (?, ?, ?, ?)",
                   [(i, f32([i, 0]), i % 10, f"t{i % 3}") for i in range(1, 101)])

    def indexes_on(table):
        return sorted(r[0] for r in db.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name=?", (table,)))

    assert len(indexes_on("t_rows")) == 2 and all(x.endswith(("(c1)", "(c2)")) for x in indexes_on("t_rows"))
    plan = " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN SELECT rowid FROM t_rows WHERE c1 = 3"))
    assert "INDEX VECTORDB_" in plan.upper(), plan
    db.execute("ALTER TABLE t RENAME TO u")
    assert indexes_on("t_rows") == [] and len(indexes_on("u_rows")) == 2
    # The old name is free again, indexes included.
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], user_id integer partition key)")
    got = [r[0] for r in knn(db, "[50,0]", 3, "AND user_id = 4 AND tenant = 't1'", table="u")]
    want = sorted([i for i in range(1, 101) if i % 10 == 4 and i % 3 == 1], key=lambda i: (abs(i - 50), i))[:3]
    assert got == want, (got, want)


def test_backup_copies_the_table():
    src = fresh()
    rows, meta, rnd = make_table(src, n=80)
    dst = fresh()
    src.backup(dst)
    q = rounded([rnd.gauss(0, 1) for _ in range(12)])
    same_hits(knn(dst, f32(q), 7), brute_force(rows, q, 7))


def test_direct_only():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2])")
    db.execute("INSERT INTO t(e) VALUES ('[1,1]')")
    db.execute("CREATE TABLE log(x)")
    db.execute("CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT count(*) FROM t; END")
    expect_error(db, "INSERT INTO log VALUES (1)", "unsafe use of virtual table")


def test_corrupt_shadow_tables_are_reported():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], chunk_size=8)")
    db.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", [(i, "[1,2]") for i in range(1, 6)])
    db.execute("UPDATE t_vectors00 SET vectors = x'00'")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,2]' AND k = 3", "corrupt")
    expect_error(db, "SELECT vec_to_json(e) FROM t WHERE rowid = 1", "corrupt")
    db2 = fresh()
    db2.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], chunk_size=8)")
    db2.execute("INSERT INTO t(rowid, e) VALUES (1, '[1,2]')")
    db2.execute("UPDATE t_chunks SET validity = x'0000'")
    expect_error(db2, "SELECT rowid FROM t WHERE e MATCH '[1,2]' AND k = 3", "corrupt")
    db3 = fresh()
    db3.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2], chunk_size=8)")
    db3.execute("INSERT INTO t(rowid, e) VALUES (1, '[1,2]')")
    db3.execute("UPDATE t_rows SET chunk_offset = 99")
    expect_error(db3, "SELECT vec_to_json(e) FROM t", "corrupt")
    db3.execute("UPDATE t_info SET value = 99 WHERE key = 'format'")
    db3.close()


def test_more_error_paths():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(id integer primary key, e float[2], f float[2])")
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH '[1,1]' AND f MATCH '[1,1]' AND k = 1",
                 "one MATCH constraint")
    expect_error(db, "INSERT INTO t(rowid, id, e, f) VALUES (1, 2, '[1,1]', '[1,1]')", "rowid and id disagree")
    expect_error(db, "INSERT INTO t(id, e, f) VALUES ('x', '[1,1]', '[1,1]')", "primary key id must be an integer")
    db.execute("INSERT INTO t(id, e, f) VALUES (9223372036854775807, '[1,1]', '[1,1]')")
    expect_error(db, "INSERT INTO t(e, f) VALUES ('[1,1]', '[1,1]')", "no rowid left")
    db.execute("INSERT INTO t(id, e, f) VALUES (1, '[1,1]', '[1,1]')")
    expect_error(db, "UPDATE t SET id = 'x' WHERE id = 1", "primary key id must be an integer")
    # IN lists are bound as parameters, within SQLite's variable limit.
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 5)
    ids = ",".join(str(i) for i in range(10))
    expect_error(db, f"SELECT rowid FROM t WHERE e MATCH '[1,1]' AND k = 3 AND rowid IN ({ids})",
                 "too many values in IN lists (10)")


def test_stored_format_and_layout_are_checked():
    path = os.path.join(TMP, "format.db")
    db = connect(EXT, path)
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2])")
    db.execute("UPDATE t_info SET value = 99 WHERE key = 'format'")
    db.close()
    db = connect(EXT, path)
    expect_error(db, "SELECT * FROM t", "storage format 99; this build reads formats 1 to 3")
    db.execute("UPDATE t_info SET value = 0 WHERE key = 'format'")
    expect_error(db, "SELECT * FROM t", "storage format 0; this build reads formats 1 to 3")
    db.execute("UPDATE t_info SET value = 1 WHERE key = 'format'")
    db.execute("UPDATE t_info SET value = 'chunk=8' WHERE key = 'layout'")
    db.close()
    db = connect(EXT, path)
    expect_error(db, "SELECT * FROM t", "corrupt", "does not match the stored layout")
    db.close()


def test_shadow_table_name_clash_and_missing_info():
    db = fresh()
    db.execute("CREATE TABLE t_rows(x)")
    expect_error(db, "CREATE VIRTUAL TABLE t USING vectordb(e float[2])",
                 "cannot create the shadow tables of t", "t_rows")
    # The failed CREATE is undone as a whole: no half set of shadow tables.
    assert shadow_tables(db, "t") == ["t_rows"]
    path = os.path.join(TMP, "noinfo.db")
    db = connect(EXT, path)
    db.execute("CREATE VIRTUAL TABLE v USING vectordb(e float[2])")
    db.execute("DROP TABLE v_info")
    db.close()
    db = connect(EXT, path)
    expect_error(db, "SELECT * FROM v", "cannot read v_info")
    db.close()


def test_unknown_command():
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2])")
    expect_error(db, "INSERT INTO t(t) VALUES ('frobnicate')", 'unknown command "frobnicate"')
    expect_error(db, "INSERT INTO t(t) VALUES ('m=4')", 'unknown command "m=4"',
                 "known: ef_search=N, cache_mb=N, threads=N, integrity-check")
    expect_error(db, "INSERT INTO t(t) VALUES ('ef_search=0')", "ef_search must be an integer from 1 to 4096")
    expect_error(db, "INSERT INTO t(t) VALUES ('cache_mb=x')", "cache_mb must be an integer from 1 to 1048576")


def test_any_name_sqlite_accepts():
    """Table and schema names of any length and spelling: every shadow table
    name is built from them (a 256-byte buffer once made every INSERT into a
    250-character table fail as corrupt)."""
    long_name = 't"x y ' + "a" * 290
    long_schema = 'a long "schema" ' + "s" * 240
    for schema in ("main", long_schema):
        db = fresh()
        if schema != "main":
            db.execute("ATTACH ':memory:' AS " + '"' + schema.replace('"', '""') + '"')
        qs = '"' + schema.replace('"', '""') + '"'
        qt = '"' + long_name.replace('"', '""') + '"'
        table = f"{qs}.{qt}"
        db.execute(f"CREATE VIRTUAL TABLE {table} USING vectordb(e float[4] INDEXED BY hnsw(m=4),"
                   " f float[2], part integer partition key, tag text, chunk_size=8)")
        rows = {i: [float(i), float(i % 7), float(i % 3), 1.0] for i in range(1, 41)}
        for i, v in rows.items():
            db.execute(f"INSERT INTO {table}(rowid, e, f, part, tag) VALUES (?, ?, ?, ?, ?)",
                       (i, f32(v), f32([i, 0]), i % 2, f"r{i}"))
        q = f32([10.2, 3, 1, 1])
        want = brute_force(rows, [10.2, 3, 1, 1], 5)
        same_hits(db.execute(f"SELECT rowid, distance FROM {table} WHERE e MATCH ? AND k = 5", (q,)).fetchall(),
                  want)
        same_hits(db.execute(f"SELECT rowid, distance FROM {table} WHERE e MATCH ? AND k = 5 AND ef_search = 0",
                             (q,)).fetchall(), want)
        filtered = db.execute(f"SELECT rowid FROM {table} WHERE f MATCH ? AND k = 3 AND part = 1",
                              (f32([4, 0]),)).fetchall()
        assert [r for (r,) in filtered] == [3, 5, 1], filtered
        db.execute(f"UPDATE {table} SET e = ? WHERE rowid = 10", (f32([0, 0, 0, 0]),))
        db.execute(f"DELETE FROM {table} WHERE rowid = 11")
        assert db.execute(f"SELECT e, tag FROM {table} WHERE rowid = 10").fetchone() == (f32([0, 0, 0, 0]), "r10")
        assert one(db, "SELECT vectordb_check(?, ?)", schema, long_name) == "ok"
        renamed = long_name + "b"
        db.execute(f"ALTER TABLE {table} RENAME TO " + '"' + renamed.replace('"', '""') + '"')
        assert one(db, "SELECT vectordb_check(?, ?)", schema, renamed) == "ok"
        assert one(db, f"SELECT count(*) FROM {qs}." + '"' + renamed.replace('"', '""') + '"') == 39
        db.execute(f"DROP TABLE {qs}." + '"' + renamed.replace('"', '""') + '"')
        assert one(db, f"SELECT count(*) FROM {qs}.sqlite_master") == 0
        db.close()



def test_vectordb_stats():
    db = fresh()
    db.execute("ATTACH ':memory:' AS aux")
    db.execute("CREATE VIRTUAL TABLE aux.t USING vectordb(g float[3] INDEXED BY hnsw(m=4, ef_construction=20),"
               " f int8[4], tag text)")
    random.seed(7)
    for i in range(1, 301):
        db.execute("INSERT INTO aux.t(rowid, g, f, tag) VALUES (?, ?, vec_int8(?), ?)",
                   (i, f32([random.random() for _ in range(3)]), "[1,2,3,4]", "x"))
    db.execute("INSERT INTO aux.t(t) VALUES ('ef_search=33')")
    rows = db.execute("SELECT \"column\", key, value FROM vectordb_stats('t', 'aux')").fetchall()
    table = {k: v for c, k, v in rows if c is None}
    g = {k: v for c, k, v in rows if c == "g"}
    f = {k: v for c, k, v in rows if c == "f"}
    assert table["rows"] == 300 and table["format"] == 3, table
    assert table["bytes_rows"] > 0 and table["bytes_hnsw00"] > 0 and table["bytes_vectors01"] > 0, table
    assert f == {"index": "flat"}, f
    assert g["index"] == "hnsw" and g["nodes"] == 300, g
    assert sum(v for k, v in g.items() if k.startswith("nodes_level_")) == 300, g
    assert 1 <= g["degree_min"] <= g["degree_mean"] <= g["degree_max"] <= 12, g
    assert (g["m"], g["ef_construction"], g["ef_search"], g["cache_mb"]) == (4, 20, 33, 256), g
    assert g["nodes_level_%d" % g["entry_level"]] >= 1, g
    before = g["hits"] + g["misses"]
    db.execute("SELECT rowid FROM aux.t WHERE g MATCH ? AND k = 3", (f32([0.5, 0.5, 0.5]),)).fetchall()
    g2 = {k: v for c, k, v in db.execute("SELECT * FROM vectordb_stats('t', 'aux')") if c == "g"}
    assert g2["hits"] + g2["misses"] > before, (g, g2)
    # A table this connection has not used yet is connected to answer.
    path = os.path.join(TMP, "stats.db")
    maker = connect(EXT, path)
    maker.execute("CREATE VIRTUAL TABLE u USING vectordb(e float[2])")
    maker.execute("INSERT INTO u(rowid, e) VALUES (1, '[1,2]')")
    maker.close()
    reader = connect(EXT, path)
    assert one(reader, "SELECT value FROM vectordb_stats('u') WHERE key = 'rows'") == 1
    reader.close()
    expect_error(db, "SELECT * FROM vectordb_stats('nope')", "no such table")
    db.execute("CREATE TABLE plain(x)")
    expect_error(db, "SELECT * FROM vectordb_stats('plain')", "main.plain is not a vectordb table")
    expect_error(db, "SELECT * FROM vectordb_stats", "give the table")


def test_loading_twice_keeps_tables_working():
    """Loading the extension again replaces its module while the tables
    connected through the first one live on (SQLite keeps that module until
    they go): they keep working and vectordb_stats still finds them."""
    db = fresh()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[2] INDEXED BY hnsw())")
    db.execute("INSERT INTO t(rowid, e) VALUES (1, '[1,2]'), (2, '[3,4]')")
    db.enable_load_extension(True)
    db.load_extension(EXT)
    assert db.execute("SELECT rowid FROM t WHERE e MATCH '[1,2]' AND k = 1").fetchall() == [(1,)]
    assert one(db, "SELECT value FROM vectordb_stats('t') WHERE key = 'rows'") == 2
    db.execute("CREATE VIRTUAL TABLE u USING vectordb(e float[2])")
    db.execute("DROP TABLE t")
    assert one(db, "SELECT value FROM vectordb_stats('u') WHERE key = 'rows'") == 0
    db.close()


run(globals())
