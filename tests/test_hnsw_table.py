"""vectordb tables with an HNSW index, on real data: a sample of Fashion-MNIST
(Debian's dataset-fashion-mnist), L2 on raw pixels.

usage: /usr/bin/python3 tests/test_hnsw_table.py EXTENSION_PATH [N] [name-filter]
"""
import atexit
import gzip
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, decode_links, encode_links, expect_error, one, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
N = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 10000
TMP = tempfile.mkdtemp(prefix="vectordb-hnsw-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
DATA = "/usr/share/datasets/fashion-mnist"
NQ = 100


def images(name, count, skip=0):
    with gzip.open(f"{DATA}/{name}", "rb") as f:
        raw = f.read()
    n, rows, cols = struct.unpack(">III", raw[4:16])
    arr = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    return arr[skip:skip + count].astype(np.float32)


BASE = images("train-images-idx3-ubyte.gz", N)
EXTRA = images("train-images-idx3-ubyte.gz", (3 * N) // 10, skip=N)
QUERIES = images("t10k-images-idx3-ubyte.gz", NQ)
DECL = "e float[784] INDEXED BY hnsw(m=16, ef_construction=100), label integer"
DECL1 = DECL.replace("ef_construction=100", "ef_construction=100, threads=1")   # the same inserts, the same graph
DECL2 = DECL.replace("ef_construction=100", "ef_construction=100, threads=2")


def build(db, rows, table="t", decl=DECL):
    db.execute(f"CREATE VIRTUAL TABLE {table} USING vectordb({decl})")
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO {table}(rowid, e, label) VALUES (?, ?, ?)",
                   ((rid, v.tobytes(), rid % 10) for rid, v in rows))
    db.execute("COMMIT")


def knn(db, q, k=10, extra="", params=(), table="t"):
    return db.execute(f"SELECT rowid, distance FROM {table} WHERE e MATCH ? AND k = ? {extra}",
                      (q.tobytes(), k) + tuple(params)).fetchall()


def recall(db, table="t", ef=None, queries=QUERIES, extra="", params=()):
    found = total = 0
    ef_clause = f"AND ef_search = {ef}" if ef is not None else ""
    for q in queries:
        want = {r for r, _ in knn(db, q, 10, "AND ef_search = 0 " + extra, params, table)}
        got = knn(db, q, 10, ef_clause + " " + extra, params, table)
        assert [d for _, d in got] == sorted(d for _, d in got), "sorted by distance"
        found += len(want & {r for r, _ in got})
        total += len(want)
    return found / total


def integrity(db, table="t"):
    db.execute(f"INSERT INTO {table}({table}) VALUES ('integrity-check')")
    assert one(db, "SELECT vectordb_check(?)", table) == "ok"


def digest(db, table="t"):
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ?",
                                      (table + "\\_%",))]
    return [db.execute(f"SELECT * FROM {n} ORDER BY 1").fetchall() for n in sorted(names)]


db = connect(EXT, os.path.join(TMP, "main.db"))
db.execute("PRAGMA journal_mode=WAL")
ROWS = [(i + 1, BASE[i]) for i in range(N)]
build(db, ROWS)


def test_recall_at_default_ef_search():
    r = recall(db)
    print(f"recall@10 at the default ef_search over {N} rows: {r:.4f}")
    assert r >= 0.95, r
    integrity(db)


def test_every_row_finds_itself():
    hits = sum(knn(db, BASE[i], 1)[0][0] == i + 1 for i in range(0, N, max(1, N // 500)))
    total = len(range(0, N, max(1, N // 500)))
    print(f"self-recall {hits}/{total}")
    assert hits >= 0.99 * total


def test_exact_on_request_and_ef_per_query():
    q = QUERIES[0]
    exact = knn(db, q, 10, "AND ef_search = 0")
    # The exact answer equals a brute-force computation.
    d = np.sqrt(((BASE - q) ** 2).sum(axis=1))
    want = sorted(range(N), key=lambda i: (d[i], i))[:10]
    assert [r for r, _ in exact] == [i + 1 for i in want]
    assert recall(db, ef=400, queries=QUERIES[:20]) >= recall(db, ef=10, queries=QUERIES[:20])
    expect_error(db, "SELECT rowid FROM t WHERE e MATCH ? AND k = 3 AND ef_search = -1",
                 "ef_search must be an integer from 0", params=(q.tobytes(),))


def test_filters_use_graph_or_exact_and_return_k():
    q = QUERIES[1]
    # Broad filter (half the rows): the graph walk skips non-matches.
    got = knn(db, q, 10, "AND label < 5")
    want = knn(db, q, 10, "AND label < 5 AND ef_search = 0")
    assert len(got) == 10 and len({r for r, _ in got} & {r for r, _ in want}) >= 9
    assert all(r % 10 < 5 for r, _ in got)
    # Selective filter: exact over the few matches.
    ids = list(range(3, N, 997))
    marks = ",".join("?" * len(ids))
    got = knn(db, q, 5, f"AND rowid IN ({marks})", ids)
    assert got == knn(db, q, 5, f"AND rowid IN ({marks}) AND ef_search = 0", ids)
    assert r_filtered_recall() >= 0.9


def r_filtered_recall():
    return recall(db, queries=QUERIES[:30], extra="AND label = ?", params=(3,))


def test_table_default_ef_search_command():
    d = connect(EXT, os.path.join(TMP, "main.db"))
    d.execute("INSERT INTO t(t) VALUES ('ef_search=12')")
    low = recall(d, queries=QUERIES[:30])
    d.close()
    d = connect(EXT, os.path.join(TMP, "main.db"))      # persisted across connections
    assert recall(d, queries=QUERIES[:30]) == low
    d.execute("INSERT INTO t(t) VALUES ('ef_search=64')")
    assert recall(d, queries=QUERIES[:30]) >= low
    expect_error(d, "INSERT INTO t(t) VALUES ('ef_search=0')", "ef_search must be an integer from 1 to 4096")
    expect_error(d, "INSERT INTO t(t) VALUES ('ef_search=abc')", "ef_search must be an integer")
    expect_error(d, "INSERT INTO t(t) VALUES ('cache_mb=0')", "cache_mb must be an integer from 1")
    expect_error(d, "INSERT INTO t(t) VALUES ('rebuild')", 'unknown command "rebuild"', "integrity-check")
    d.close()


def test_small_cache_budget_gives_same_answers():
    d = connect(EXT, os.path.join(TMP, "main.db"))
    before = [knn(d, q) for q in QUERIES[:10]]
    d.execute("INSERT INTO t(t) VALUES ('cache_mb=1')")
    assert [knn(d, q) for q in QUERIES[:10]] == before
    # The budget covers everything the cache holds, its lookup tables too.
    st = {k: v for c, k, v in d.execute("SELECT * FROM vectordb_stats('t')")}
    assert 0 < st["cache_table_bytes"] <= st["cache_bytes"] <= 1 << 20, st
    d.execute("INSERT INTO t(t) VALUES ('cache_mb=256')")
    d.close()


def test_rollback_and_savepoint_leave_the_graph_as_it_was():
    before = digest(db)
    first = [knn(db, q) for q in QUERIES[:5]]
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                   [(N + 1000 + i, EXTRA[i].tobytes()) for i in range(50)])
    db.execute("DELETE FROM t WHERE rowid BETWEEN 1 AND 40")
    db.execute("UPDATE t SET e = ? WHERE rowid = 100", (QUERIES[0].tobytes(),))
    assert knn(db, QUERIES[0], 1)[0] == (100, 0.0)      # visible inside the transaction
    db.execute("ROLLBACK")
    assert digest(db) == before
    assert [knn(db, q) for q in QUERIES[:5]] == first
    db.execute("BEGIN")
    db.execute("DELETE FROM t WHERE rowid = 7")
    db.execute("SAVEPOINT s")
    db.execute("DELETE FROM t WHERE rowid BETWEEN 8 AND 60")
    db.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                   [(N + 2000 + i, EXTRA[i].tobytes()) for i in range(20)])
    db.execute("ROLLBACK TO s")
    db.execute("RELEASE s")
    # A multi-row statement that fails half way leaves nothing either.
    expect_error(db, "INSERT INTO t(rowid, e, label) SELECT value, ?, 'bad' FROM json_each('[900001, 900002]')",
                 "expects integer", params=(EXTRA[0].tobytes(),))
    db.execute("COMMIT")
    integrity(db)
    assert one(db, "SELECT count(*) FROM t") == N - 1
    assert 7 not in {r for q in QUERIES[:5] for r, _ in knn(db, q, 50)}
    db.execute("INSERT INTO t(rowid, e, label) VALUES (7, ?, 7)", (BASE[6].tobytes(),))
    integrity(db)


def test_statement_failing_after_its_first_rows_leaves_nothing():
    """Inside a transaction, a multi-row statement that fails on a later row
    (its first rows already in the table and the graph) leaves the database
    exactly as a twin that never ran it, once both commit."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((300, 8)).astype(np.float32)
    extra = rng.standard_normal((5, 8)).astype(np.float32)

    def twin():
        c = connect(EXT)
        build(c, [(i + 1, base[i]) for i in range(300)],
              decl="e float[8] INDEXED BY hnsw(m=4, ef_construction=20, threads=1), label integer")
        c.execute("CREATE TEMP TABLE s(rowid INTEGER PRIMARY KEY, e BLOB, label)")
        c.executemany("INSERT INTO s VALUES (?, ?, 1)", [(1000 + i, extra[i].tobytes()) for i in range(5)])
        c.execute("INSERT INTO s VALUES (1005, ?, 1)", (extra[0, :7].tobytes(),))   # 7 dimensions
        return c

    failing = [
        ("INSERT INTO t(rowid, e, label) SELECT rowid, e, label FROM s ORDER BY rowid", "expects 8 dimensions"),
        ("UPDATE t SET e = CASE WHEN rowid = 20 THEN x'00' ELSE e END WHERE rowid BETWEEN 10 AND 30",
         "invalid float32"),
        ("INSERT INTO t(rowid, e, label) SELECT rowid + 100000, e, CASE WHEN rowid = 1003 THEN 'x' ELSE 1 END "
         "FROM s ORDER BY rowid", "expects integer"),
        ("UPDATE t SET rowid = CASE WHEN rowid = 75 THEN 80 ELSE rowid + 1000 END WHERE rowid BETWEEN 70 AND 80",
         "UNIQUE constraint failed"),
    ]
    for sql, message in failing:
        a, b = twin(), twin()
        for c in (a, b):
            c.execute("BEGIN")
            c.execute("DELETE FROM t WHERE rowid = 5")
        expect_error(a, sql, message)
        for c in (a, b):
            c.execute("COMMIT")
        integrity(a)
        assert digest(a) == digest(b), sql
        a.close()
        b.close()


def test_other_connection_never_sees_stale_graph():
    other = connect(EXT, os.path.join(TMP, "main.db"))
    q = QUERIES[2]
    top = knn(other, q, 3)                   # fills the other connection's cache
    db.execute("DELETE FROM t WHERE rowid = ?", (top[0][0],))
    after = knn(other, q, 3)
    assert top[0][0] not in {r for r, _ in after}, "a deleted row came back from a stale cache"
    db.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, 1)", (N + 5000, q.tobytes()))
    assert knn(other, q, 1) == [(N + 5000, 0.0)], "a committed row is missing"
    db.execute("DELETE FROM t WHERE rowid = ?", (N + 5000,))
    db.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, ?)", (top[0][0], BASE[top[0][0] - 1].tobytes(), 0))
    other.close()
    integrity(db)


def stats(conn, table="t"):
    return {k: v for c, k, v in conn.execute("SELECT * FROM vectordb_stats(?)", (table,))}


def same_as_exact(conn, queries, k=10):
    """The graph's answers on conn equal exact search on conn (the rows
    changed here are the queries' nearest, which the walk finds)."""
    for q in queries:
        got = [r for r, _ in knn(conn, q, k)]
        want = [r for r, _ in knn(conn, q, k, "AND ef_search = 0")]
        assert got == want, (got, want)


def test_other_connections_commits_refresh_only_what_changed():
    """A reader whose cache is warm keeps it when another connection
    commits: it drops the nodes and chunks the change log names, and
    answers exactly as a fresh reader would."""
    reader = connect(EXT, os.path.join(TMP, "main.db"))
    qs = QUERIES[10:20]
    for q in qs:
        knn(reader, q, 10)
    before = stats(reader)
    assert before["cached_nodes"] > 200 and before["format"] == 3, before
    # Inserts at the queries, a delete, a new vector, a rowid move: one
    # transaction each, the log's usual case.
    for i, q in enumerate(qs[:4]):
        db.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, 3)", (N + 9000 + i, q.tobytes()))
    db.execute("DELETE FROM t WHERE rowid = ?", (N + 9000,))
    db.execute("UPDATE t SET e = ? WHERE rowid = ?", (qs[5].tobytes(), N + 9001))
    db.execute("UPDATE t SET rowid = ? WHERE rowid = ?", (N + 9100, N + 9002))
    assert knn(reader, qs[5], 1) == [(N + 9001, 0.0)]
    assert knn(reader, qs[2], 1) == [(N + 9100, 0.0)]
    assert knn(reader, qs[0], 1)[0][0] != N + 9000
    same_as_exact(reader, qs)
    after = stats(reader)
    assert after["full_reloads"] == before["full_reloads"], after
    assert after["refreshes"] >= before["refreshes"] + 1, after
    assert after["refreshed_nodes"] > before["refreshed_nodes"], after
    assert after["cached_nodes"] > before["cached_nodes"] // 2, (before, after)
    # A rolled-back transaction changes nothing anyone sees.
    db.execute("BEGIN")
    db.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, 3)", (N + 9200, qs[7].tobytes()))
    db.execute("ROLLBACK")
    assert knn(reader, qs[7], 1)[0][0] != N + 9200
    # A gap in the log (rows pruned, here by hand) cannot be answered from
    # it: the reader reloads everything, and is still right.
    db.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, 3)", (N + 9300, qs[8].tobytes()))
    db.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, 3)", (N + 9301, qs[9].tobytes()))
    db.execute("DELETE FROM t_hnswlog00 WHERE seq = (SELECT max(seq) - 1 FROM t_hnswlog00)")
    assert knn(reader, qs[8], 1) == [(N + 9300, 0.0)]
    assert knn(reader, qs[9], 1) == [(N + 9301, 0.0)]
    assert stats(reader)["full_reloads"] == after["full_reloads"] + 1
    same_as_exact(reader, qs)
    # A change too large to list (a bulk load: 400 inserts dirty far more than
    # 1,024 nodes) says "reload everything".
    knn(reader, qs[0], 10)
    db.execute("BEGIN")
    for rid in range(N + 9001, N + 9302):
        db.execute("DELETE FROM t WHERE rowid = ?", (rid,))
    db.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 4)",
                   ((N + 10000 + i, EXTRA[i].tobytes()) for i in range(min(400, len(EXTRA)))))
    db.execute("COMMIT")
    reloads = stats(reader)["full_reloads"]
    same_as_exact(reader, qs[:3])
    assert stats(reader)["full_reloads"] == reloads + 1
    db.execute("BEGIN")
    db.executemany("DELETE FROM t WHERE rowid = ?", ((N + 10000 + i,) for i in range(min(400, len(EXTRA)))))
    db.execute("COMMIT")
    reader.close()
    integrity(db)


def downgrade(path, version, m=16):
    """Rewrite a format 3 file's table t as a build of format `version`
    (1 or 2) wrote it (vdb_format.h): fixed-size links BLOBs (per layer a
    uint16 count and cap int64 slots, cap 3m on layer 0 and m above), a
    level index over every node, and for format 1 no change log."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    for nid, links in raw.execute("SELECT nid, links FROM t_hnsw00").fetchall():
        fixed = b""
        for layer, ids in enumerate(decode_links(links)):
            cap = 3 * m if layer == 0 else m
            fixed += struct.pack("<H", len(ids)) + b"".join(struct.pack("<q", x) for x in ids)
            fixed += bytes(8 * (cap - len(ids)))
        raw.execute("UPDATE t_hnsw00 SET links = ? WHERE nid = ?", (fixed, nid))
    (name, sql), = raw.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE '%hnsw00_level'").fetchall()
    assert sql.endswith("WHERE level>0"), sql
    raw.execute(f'DROP INDEX "{name}"')
    raw.execute(sql[:-len(" WHERE level>0")])
    raw.execute("UPDATE t_info SET value = ? WHERE key = 'format'", (version,))
    if version < 2:
        raw.execute("DROP TABLE t_hnswlog00")
    raw.execute("COMMIT")
    raw.close()


def test_format_3_links_are_compact_and_follow_the_graph():
    """Format 3 stores each layer's links as a count and ascending varint
    steps, with nothing for the free slots, and the level index holds only
    the nodes above layer 0."""
    d = connect(EXT)
    build(d, ROWS[:2000])
    assert stats(d)["format"] == 3
    total_links = total_bytes = 0
    for nid, level, links in d.execute("SELECT nid, level, links FROM t_hnsw00"):
        layers = decode_links(links)
        assert len(layers) == level + 1, (nid, level, layers)
        assert encode_links(layers) == links, nid     # the one encoding, ids ascending
        assert len(layers[0]) <= 48 and all(len(x) <= 16 for x in layers[1:])
        assert all(0 < x < 2001 and x != nid for ids in layers for x in ids)
        total_links += sum(len(ids) for ids in layers)
        total_bytes += len(links)
    # Ids below 2,001 are steps of one or two bytes: far below format 2's 8.
    assert total_bytes < 2.2 * total_links, (total_bytes, total_links)
    n_upper = one(d, "SELECT count(*) FROM t_hnsw00 WHERE level > 0")
    assert 0 < n_upper < 400
    idx = one(d, "SELECT name FROM sqlite_master WHERE name LIKE '%hnsw00_level'")
    assert one(d, f'SELECT count(*) FROM pragma_index_info(\'{idx}\')') == 1
    plan = " ".join(r[-1] for r in d.execute(
        "EXPLAIN QUERY PLAN SELECT nid FROM t_hnsw00 WHERE level>0 ORDER BY level DESC, nid LIMIT 1"))
    assert idx in plan, plan


def test_deleting_the_entry_point_picks_the_next_highest_node():
    """The entry point's successor comes from the partial level index, or,
    when no node is left above layer 0, from the lowest node id."""
    d = connect(EXT)
    build(d, ROWS[:300])
    while True:
        entry = one(d, "SELECT value FROM t_info WHERE key = 'hnsw00_entry'")
        level = one(d, "SELECT level FROM t_hnsw00 WHERE nid = ?", entry)
        top = one(d, "SELECT max(level) FROM t_hnsw00 WHERE nid != ?", entry)
        rowid = one(d, "SELECT rowid FROM t_hnsw00 WHERE nid = ?", entry)
        d.execute("DELETE FROM t WHERE rowid = ?", (rowid,))
        left = one(d, "SELECT count(*) FROM t_hnsw00")
        if left == 0:
            break
        new_entry = one(d, "SELECT value FROM t_info WHERE key = 'hnsw00_entry'")
        assert one(d, "SELECT value FROM t_info WHERE key = 'hnsw00_entry_level'") == top
        assert one(d, "SELECT level FROM t_hnsw00 WHERE nid = ?", new_entry) == top, (entry, level)
        if top == 0:
            assert new_entry == one(d, "SELECT min(nid) FROM t_hnsw00")
            break
    integrity(d)
    assert len(knn(d, QUERIES[0], 5)) == min(5, one(d, "SELECT count(*) FROM t"))


def test_tables_keep_the_chunk_size_they_were_made_with():
    """A table with an hnsw column now defaults to chunks of at most 16 KiB
    (vdb_schema.h); one made by an older build without chunk_size has the
    old default (1024 rows at 128 dimensions) in its stored layout, and
    must keep working with it: reads, writes and the integrity check."""
    path = os.path.join(TMP, "oldchunk.db")
    rng = np.random.default_rng(5)
    vecs = rng.normal(0, 1, (1500, 128)).astype(np.float32)
    d = connect(EXT, path)
    d.execute("CREATE VIRTUAL TABLE c USING vectordb(e float[128] INDEXED BY hnsw())")
    assert one(d, "SELECT value FROM c_info WHERE key = 'layout'").startswith("chunk=32;")
    d.execute("CREATE VIRTUAL TABLE o USING vectordb(e float[128] INDEXED BY hnsw(), chunk_size=1024)")
    d.execute("BEGIN")
    d.executemany("INSERT INTO o(rowid, e) VALUES (?, ?)", ((i + 1, vecs[i].tobytes()) for i in range(1000)))
    d.execute("COMMIT")
    d.close()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA writable_schema = ON")
    raw.execute("UPDATE sqlite_schema SET sql = replace(sql, ', chunk_size=1024', '') WHERE name = 'o'")
    raw.close()
    d = connect(EXT, path)
    assert "chunk_size" not in one(d, "SELECT sql FROM sqlite_schema WHERE name = 'o'")
    assert one(d, "SELECT value FROM o_info WHERE key = 'layout'").startswith("chunk=1024;")
    q = vecs[7]
    assert d.execute("SELECT rowid FROM o WHERE e MATCH ? AND k = 1", (q.tobytes(),)).fetchall() == [(8,)]
    d.executemany("INSERT INTO o(rowid, e) VALUES (?, ?)", ((i + 1, vecs[i].tobytes()) for i in range(1000, 1500)))
    d.execute("DELETE FROM o WHERE rowid <= 100")
    assert one(d, "SELECT count(*) FROM o_chunks") == 2
    assert d.execute("SELECT rowid FROM o WHERE e MATCH ? AND k = 1", (vecs[1200].tobytes(),)).fetchall() == [(1201,)]
    assert one(d, "SELECT vectordb_check('o')") == "ok"
    # A stored layout that no declaration could have is still refused.
    d.execute("UPDATE o_info SET value = replace(value, 'chunk=1024;', 'chunk=1001;') WHERE key = 'layout'")
    d.close()
    d = connect(EXT, path)
    expect_error(d, "SELECT count(*) FROM o", "does not match the stored layout")
    d.close()


def test_format_2_tables_keep_their_layout():
    """A table made by a format 2 build (fixed 8-byte link slots, a full
    level index) stays readable and writable, and is written in its own
    layout, never partly in the new one."""
    path = os.path.join(TMP, "v2.db")
    w = connect(EXT, path)
    build(w, ROWS[:1000])
    w.close()
    w = connect(EXT, path)             # the graph as read from the table
    want = [knn(w, q, 10) for q in QUERIES[:20]]
    w.close()
    downgrade(path, 2)
    w = connect(EXT, path)
    assert stats(w)["format"] == 2
    assert [knn(w, q, 10) for q in QUERIES[:20]] == want
    w.execute("BEGIN")
    w.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 1)",
                  ((N + 20000 + i, EXTRA[i].tobytes()) for i in range(200)))
    w.execute("DELETE FROM t WHERE rowid BETWEEN 1 AND 100")
    w.execute("COMMIT")
    integrity(w)
    for level, size in w.execute("SELECT level, length(links) FROM t_hnsw00"):
        assert size == 2 + 8 * 48 + level * (2 + 8 * 16), (level, size)
    assert knn(w, EXTRA[5], 1) == [(N + 20005, 0.0)]
    w.close()


def test_format_1_tables_have_no_log_and_still_stay_coherent():
    """A table made by a format 1 build has no change log: readers drop
    their whole cache when another connection commits, as before."""
    path = os.path.join(TMP, "v1.db")
    w = connect(EXT, path)
    w.execute("PRAGMA journal_mode=WAL")
    build(w, ROWS[:500])
    w.close()
    downgrade(path, 1)
    w = connect(EXT, path)
    reader = connect(EXT, path)
    q = QUERIES[0]
    knn(reader, q, 5)
    assert stats(reader)["format"] == 1
    w.execute("INSERT INTO t(rowid, e, label) VALUES (?, ?, 1)", (N + 1, q.tobytes()))
    assert knn(reader, q, 1) == [(N + 1, 0.0)]
    assert stats(reader)["full_reloads"] == 1 and stats(reader)["refreshes"] == 0
    integrity(w)
    assert one(w, "SELECT count(*) FROM sqlite_master WHERE name = 't_hnswlog00'") == 0
    w.close()
    reader.close()


def test_updates_move_nodes():
    q = QUERIES[3]
    old = BASE[49].tobytes()
    db.execute("UPDATE t SET e = ? WHERE rowid = 50", (q.tobytes(),))
    assert knn(db, q, 1) == [(50, 0.0)]
    db.execute("UPDATE t SET rowid = ? WHERE rowid = 50", (N + 7000,))
    assert knn(db, q, 1) == [(N + 7000, 0.0)]
    db.execute("UPDATE t SET rowid = 50, e = ? WHERE rowid = ?", (old, N + 7000))
    integrity(db)
    assert knn(db, BASE[49], 1)[0][0] == 50


def test_churn_keeps_recall_of_a_fresh_build():
    d = connect(EXT, os.path.join(TMP, "churn.db"))
    build(d, ROWS)
    gone = [rid for rid, _ in ROWS if (rid * 7919) % 10 < 3]
    d.execute("BEGIN")
    d.executemany("DELETE FROM t WHERE rowid = ?", [(r,) for r in gone])
    d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                  [(N + 1 + i, EXTRA[i].tobytes()) for i in range(len(EXTRA))])
    d.execute("COMMIT")
    integrity(d)
    churned = recall(d)
    survivors = [(rid, v) for rid, v in ROWS if (rid * 7919) % 10 >= 3] + \
        [(N + 1 + i, EXTRA[i]) for i in range(len(EXTRA))]
    fresh = connect(EXT, os.path.join(TMP, "fresh.db"))
    build(fresh, survivors)
    fresh_recall = recall(fresh)
    print(f"after deleting 30% and inserting new rows: recall {churned:.4f}, fresh build {fresh_recall:.4f}")
    assert churned >= fresh_recall - 0.01
    d.close()
    fresh.close()


def test_heavy_churn_keeps_recall_of_a_fresh_build():
    """Delete half the rows and insert as many new ones, three times, at a small m
    and ef_construction, where recall at ef_search 16 is far from 1 and a
    graph that the delete repair had damaged would show it."""
    decl = "e float[784] INDEXED BY hnsw(m=6, ef_construction=40), label integer"
    pool = images("train-images-idx3-ubyte.gz", 10000, skip=N + (3 * N) // 10)
    queries = images("t10k-images-idx3-ubyte.gz", 300, skip=NQ)
    live = {i + 1: pool[i] for i in range(4000)}
    d = connect(EXT, os.path.join(TMP, "heavy-churn.db"))
    build(d, live.items(), decl=decl)
    added = 4000
    for rnd in range(3):
        gone = sorted(live)[rnd % 2::2]
        d.execute("BEGIN")
        d.executemany("DELETE FROM t WHERE rowid = ?", [(r,) for r in gone])
        for r in gone:
            del live[r]
        new = {added + 1 + i: pool[added + i] for i in range(len(gone))}
        added += len(gone)
        d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)", [(r, v.tobytes()) for r, v in new.items()])
        live.update(new)
        d.execute("COMMIT")
    integrity(d)
    churned = recall(d, ef=16, queries=queries)
    fresh = []
    for name, order in (("rowid", sorted(live)), ("reverse", sorted(live, reverse=True))):
        f = connect(EXT, os.path.join(TMP, f"heavy-fresh-{name}.db"))
        build(f, [(r, live[r]) for r in order], decl=decl)
        fresh.append(recall(f, ef=16, queries=queries))
        f.close()
    print(f"after three rounds of replacing half the rows: recall@10 {churned:.4f} at ef_search 16, "
          f"fresh builds {fresh[0]:.4f} and {fresh[1]:.4f}")
    assert churned >= sum(fresh) / len(fresh) - 0.01
    d.close()


def test_reopen_rename_vacuum_keep_the_graph():
    path = os.path.join(TMP, "reopen.db")
    d = connect(EXT, path)
    build(d, ROWS[:2000])
    want = [knn(d, q) for q in QUERIES[:10]]
    d.close()
    d = connect(EXT, path)
    assert [knn(d, q) for q in QUERIES[:10]] == want
    d.execute("ALTER TABLE t RENAME TO u")
    assert [knn(d, q, table="u") for q in QUERIES[:10]] == want
    d.execute("VACUUM")
    assert [knn(d, q, table="u") for q in QUERIES[:10]] == want
    integrity(d, "u")
    d.execute("DROP TABLE u")
    assert one(d, "SELECT count(*) FROM sqlite_master") == 0
    d.close()


def test_same_inserts_same_graph():
    # threads=1: with more, which thread links which row depends on timing.
    a, b = connect(EXT), connect(EXT)
    build(a, ROWS[:500], decl=DECL1)
    build(b, ROWS[:500], decl=DECL1)
    assert a.execute("SELECT * FROM t_hnsw00 ORDER BY nid").fetchall() == \
        b.execute("SELECT * FROM t_hnsw00 ORDER BY nid").fetchall()


def test_corrupt_graph_is_reported():
    d = connect(EXT)
    build(d, ROWS[:300])
    d.execute("UPDATE t_hnsw00 SET links = x'0100' WHERE nid = 5")
    expect_error(d, "INSERT INTO t(t) VALUES ('integrity-check')", "corrupt")
    e = connect(EXT)
    build(e, ROWS[:300])
    e.execute("UPDATE t_hnsw00 SET links = zeroblob(level + 1)")          # no links at all
    expect_error(e, "INSERT INTO t(t) VALUES ('integrity-check')", "corrupt", "reachable")
    f = connect(EXT)
    build(f, ROWS[:300])
    nid = one(f, "SELECT nid FROM t_hnsw00 WHERE level = 0 LIMIT 1")
    f.execute("DELETE FROM t_hnsw00 WHERE nid = ?", (nid,))
    expect_error(f, "INSERT INTO t(t) VALUES ('integrity-check')", "corrupt", "nodes for")
    # A connection whose walk meets the damage reports it instead of crashing.
    path = os.path.join(TMP, "damaged.db")
    g = connect(EXT, path)
    build(g, ROWS[:300])
    g.close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE t_hnsw00 SET links = x'00'")
    raw.commit()
    raw.close()
    g = connect(EXT, path)
    expect_error(g, "SELECT rowid FROM t WHERE e MATCH ? AND k = 3", "corrupt", "bytes of links",
                 params=(QUERIES[0].tobytes(),))
    g.close()
    # An edge to a node id that has no row: the message says so.
    h = connect(EXT, os.path.join(TMP, "dangling.db"))
    build(h, ROWS[:300])
    rows = h.execute("SELECT nid, links FROM t_hnsw00").fetchall()
    h.close()
    raw = sqlite3.connect(os.path.join(TMP, "dangling.db"))
    for nid, links in rows:
        layers = decode_links(links)
        if layers[0]:
            layers[0][-1] = 999999
            raw.execute("UPDATE t_hnsw00 SET links = ? WHERE nid = ?", (encode_links(layers), nid))
    raw.commit()
    raw.close()
    h = connect(EXT, os.path.join(TMP, "dangling.db"))
    expect_error(h, "SELECT rowid FROM t WHERE e MATCH ? AND k = 3", "corrupt", "node 999999, which has no row",
                 params=(QUERIES[0].tobytes(),))
    h.close()


def test_check_function_and_pragma_integrity_check():
    d = connect(EXT)
    build(d, ROWS[:300])
    assert one(d, "SELECT vectordb_check('t')") == "ok"
    assert one(d, "SELECT vectordb_check('main', 't')") == "ok"
    assert d.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    nid = one(d, "SELECT nid FROM t_hnsw00 ORDER BY nid LIMIT 1 OFFSET 7")
    d.execute("UPDATE t_hnsw00 SET links = zeroblob(level + 1) WHERE nid = ?", (nid,))
    finding = one(d, "SELECT vectordb_check('t')")
    assert "corrupt" in finding and "not reciprocal" in finding, finding
    pragma = [r[0] for r in d.execute("PRAGMA integrity_check")]
    if sqlite3.sqlite_version_info >= (3, 44, 0):
        # xIntegrity: PRAGMA integrity_check covers the index.
        assert any("vectordb table t" in r and "not reciprocal" in r for r in pragma), pragma
        assert d.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    else:
        assert pragma == ["ok"], pragma
    expect_error(d, "SELECT vectordb_check('nope')", "no such table")
    d.execute("CREATE VIEW v AS SELECT vectordb_check('t')")
    expect_error(d, "SELECT * FROM v", "unsafe use of vectordb_check")


def test_int8_codes_walk_like_vectors():
    """The default walk over int8 codes (searches and inserts) finds what the
    walk over vectors finds, at every ef, and reports the same exact
    distances."""
    n = min(N, 3000)
    rows = ROWS[:n]
    d = connect(EXT, os.path.join(TMP, "quant.db"))
    build(d, rows, "tq", DECL.replace("ef_construction=100", "ef_construction=100, quantizer=int8"))
    build(d, rows, "tf", DECL.replace("ef_construction=100", "ef_construction=100, quantizer=none"))
    for ef in (10, 16, 64):
        rq, rf = recall(d, "tq", ef), recall(d, "tf", ef)
        print(f"ef_search={ef}: recall@10 int8 {rq:.4f}, vectors {rf:.4f}")
        assert rq >= rf - 0.005, (ef, rq, rf)
    for q in QUERIES[:20]:
        got_q = dict(knn(d, q, 10, "AND ef_search = 16", table="tq"))
        got_f = dict(knn(d, q, 10, "AND ef_search = 16", table="tf"))
        for rid in set(got_q) & set(got_f):
            assert got_q[rid] == got_f[rid], (rid, got_q[rid], got_f[rid])
    integrity(d, "tq")


def test_int8_codes_follow_data_that_drifts():
    """Rows whose values move far from the first rows' (here: an offset of
    1000 and a thousandth of the spread) are coded on their own ranges, so
    queries among them keep the recall of the walk over vectors."""
    n = min(N, 2000)
    drifted = [(i + 1 + n, 1000.0 + BASE[i] * 0.001) for i in range(n)]
    queries = [(1000.0 + q * 0.001).astype(np.float32) for q in QUERIES]
    d = connect(EXT, os.path.join(TMP, "drift.db"))
    for table, quant in (("dq", "int8"), ("df", "none")):
        build(d, ROWS[:n] + [(r, v.astype(np.float32)) for r, v in drifted], table,
              DECL.replace("ef_construction=100", f"ef_construction=100, quantizer={quant}"))
    rq, rf = recall(d, "dq", 16, queries), recall(d, "df", 16, queries)
    print(f"drifted rows at ef_search=16: recall@10 int8 {rq:.4f}, vectors {rf:.4f}")
    assert rq >= rf - 0.005, (rq, rf)
    assert rf >= 0.9, rf


def test_declaration_and_layout():
    d = connect(EXT)
    expect_error(d, "CREATE VIRTUAL TABLE x USING vectordb(e float[4] INDEXED BY hnsw(m=200))",
                 "m must be an integer from 2 to 128")
    expect_error(d, "CREATE VIRTUAL TABLE x USING vectordb(e float[4] INDEXED BY hnsw(quantizer=int4))",
                 "hnsw parameter quantizer must be none or int8")
    expect_error(d, "CREATE VIRTUAL TABLE x USING vectordb(e float[4] INDEXED BY hnsw(quantizer=1))",
                 "hnsw parameter quantizer must be none or int8")
    d.execute("CREATE VIRTUAL TABLE x USING vectordb(e float[4] distance_metric=cosine "
              "INDEXED BY hnsw(m=8, ef_construction=40, ef_search=20), f float[4])")
    names = sorted(r[0] for r in d.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    assert "x_hnsw00" in names and "x_hnsw01" not in names, names
    d.executemany("INSERT INTO x(rowid, e, f) VALUES (?, ?, ?)",
                  [(i, f"[{i},1,0,0]", "[1,1,1,1]") for i in range(1, 50)])
    got = d.execute("SELECT rowid FROM x WHERE e MATCH '[10,1,0,0]' AND k = 1").fetchall()
    assert got == [(10,)], got
    integrity(d, "x")


def test_parallel_build_searches_like_a_one_thread_build():
    d = connect(EXT)
    n = min(3000, N)
    build(d, ROWS[:n], "p2", DECL2)
    build(d, ROWS[:n], "p1", DECL1)
    s2, s1 = stats(d, "p2"), stats(d, "p1")
    assert s2["threads"] == 2 and s2["parallel_links"] >= 1, s2
    assert s2["nodes_linked_in_parallel"] >= n - 1, s2        # all but the first (the entry point)
    assert s1["threads"] == 1 and s1["parallel_links"] == 0, s1
    integrity(d, "p2")
    integrity(d, "p1")
    r2, r1 = recall(d, "p2", 16), recall(d, "p1", 16)
    print(f"{n:,} rows at ef_search=16: recall@10 {r2:.4f} linked by 2 threads, {r1:.4f} by one")
    assert r2 >= r1 - 0.02, (r2, r1)


def test_rows_waiting_to_be_linked_are_seen_and_rolled_back():
    """With threads > 1 a transaction's inserts wait to be linked in
    batches: its queries still find them, and ROLLBACK, ROLLBACK TO and a
    failing statement leave nothing of them."""
    d = connect(EXT)
    build(d, ROWS[:200], "w", DECL2)
    before = digest(d, "w")
    rows = ROWS[200:1200]                                  # fewer than a batch: all wait
    d.execute("BEGIN")
    d.executemany("INSERT INTO w(rowid, e, label) VALUES (?, ?, 0)", ((r, v.tobytes()) for r, v in rows))
    for r, v in rows[::97]:
        assert knn(d, v, 1, table="w")[0] == (r, 0.0), r
    d.execute("ROLLBACK")
    assert digest(d, "w") == before
    integrity(d, "w")
    d.execute("BEGIN")
    d.executemany("INSERT INTO w(rowid, e, label) VALUES (?, ?, 0)", ((r, v.tobytes()) for r, v in rows[:600]))
    d.execute("DELETE FROM w WHERE rowid BETWEEN 300 AND 349")      # waiting rows, linked first
    d.execute("SAVEPOINT s")
    d.executemany("INSERT INTO w(rowid, e, label) VALUES (?, ?, 0)", ((r, v.tobytes()) for r, v in rows[600:]))
    d.execute("ROLLBACK TO s")
    d.execute("RELEASE s")
    d.executemany("INSERT INTO w(rowid, e, label) VALUES (?, ?, 0)", ((r, v.tobytes()) for r, v in rows[600:900]))
    expect_error(d, "INSERT INTO w(rowid, e, label) SELECT value, ?, 'bad' FROM json_each('[900001, 900002]')",
                 "expects integer", params=(EXTRA[0].tobytes(),))
    d.execute("COMMIT")
    integrity(d, "w")
    want = {r for r, _ in ROWS[:200]} | {r for r, _ in rows[:900]} - set(range(300, 350))
    assert {r for (r,) in d.execute("SELECT rowid FROM w")} == want
    for r, v in rows[:900:37]:
        if r in want:
            assert knn(d, v, 1, table="w")[0] == (r, 0.0), r


def test_rows_linked_in_the_background_are_seen_and_rolled_back():
    """More rows than a batch (1,024): a batch's first round links in the
    background while the next rows are inserted. A query, a delete, a
    savepoint's rollback and a close in the middle of such a round each
    end it first (or cancel it), and ROLLBACK leaves nothing of it."""
    n = 3400
    # Random rows of 32 dimensions, whatever N is: the rounds, not the data, are under test.
    vecs = np.random.default_rng(11).random((200 + n + 1100, 32), dtype=np.float32)
    all_rows = [(i + 1, vecs[i]) for i in range(len(vecs))]
    path = os.path.join(TMP, "background.db")
    d = connect(EXT, path)
    build(d, all_rows[:200], "g", "e float[32] INDEXED BY hnsw(m=8, ef_construction=32, threads=2), label integer")
    before = digest(d, "g")
    rows = all_rows[200:200 + n]
    ins = "INSERT INTO g(rowid, e, label) VALUES (?, ?, 0)"
    d.execute("BEGIN")
    d.executemany(ins, ((r, v.tobytes()) for r, v in rows[:1100]))          # a round starts at 1,024
    assert knn(d, rows[5][1], 1, table="g")[0] == (rows[5][0], 0.0)      # ends it
    d.executemany(ins, ((r, v.tobytes()) for r, v in rows[1100:2600]))     # another starts at 1,100
    d.execute("ROLLBACK")
    assert digest(d, "g") == before
    integrity(d, "g")
    d.execute("BEGIN")
    d.executemany(ins, ((r, v.tobytes()) for r, v in rows[:1500]))
    d.execute("DELETE FROM g WHERE rowid BETWEEN 1000 AND 1049")   # rows the round under way links
    d.executemany(ins, ((r, v.tobytes()) for r, v in rows[1500:2100]))
    d.execute("SAVEPOINT s")
    d.executemany(ins, ((r, v.tobytes()) for r, v in rows[2100:]))   # 1,300 rows: a round starts
    d.execute("ROLLBACK TO s")                                        # and is cancelled
    d.execute("RELEASE s")
    d.execute("COMMIT")
    st = stats(d, "g")
    assert st["background_link_rounds"] >= 3 and st["background_rounds_cancelled"] >= 1, st
    assert st["nodes_linked_in_parallel"] >= 1500, st
    integrity(d, "g")
    want = {r for r, _ in all_rows[:200]} | {r for r, _ in rows[:2100]} - set(range(1000, 1050))
    assert {r for (r,) in d.execute("SELECT rowid FROM g")} == want
    for r, v in rows[:2100:41]:
        if r in want:
            assert knn(d, v, 1, table="g")[0] == (r, 0.0), r
    # A connection closed with a round under way: the rows roll back with it.
    started = st["background_link_rounds"]
    d.execute("BEGIN")
    d.executemany(ins, ((r, v.tobytes()) for r, v in all_rows[200 + n:]))
    assert stats(d, "g")["background_link_rounds"] == started + 1     # vectordb_stats ends it
    d.executemany(ins, ((r + 100000, v.tobytes()) for r, v in all_rows[200 + n:]))
    d.close()
    e = connect(EXT, path)
    assert {r for (r,) in e.execute("SELECT rowid FROM g")} == want
    integrity(e, "g")


def test_parallel_link_reads_what_the_cache_lacks_between_rounds():
    """A bulk insert into a table this connection has not cached: the
    threads note the nodes they miss, and the calling thread reads them
    before the next round (here with a cache budget far below the graph)."""
    path = os.path.join(TMP, "fallback.db")
    d = connect(EXT, path)
    half = min(1500, N // 2)
    build(d, ROWS[:half], "f", DECL2)
    d.close()
    e = connect(EXT, path)
    e.execute("INSERT INTO f(f) VALUES ('cache_mb=1')")
    e.execute("BEGIN")
    e.executemany("INSERT INTO f(rowid, e, label) VALUES (?, ?, 0)", ((r, v.tobytes()) for r, v in ROWS[half:2 * half]))
    e.execute("COMMIT")
    st = stats(e, "f")
    assert st["parallel_links"] >= 1 and st["parallel_link_rounds"] > st["parallel_links"], st
    integrity(e, "f")
    assert recall(e, "f", 64) >= 0.9


def test_threads_setting():
    d = connect(EXT)
    expect_error(d, "CREATE VIRTUAL TABLE x USING vectordb(e float[4] INDEXED BY hnsw(threads=65))",
                 "threads must be an integer from 0 to 64")
    d.execute("CREATE VIRTUAL TABLE x USING vectordb(e float[4] INDEXED BY hnsw(threads=0))")
    assert stats(d, "x")["threads"] == min(os.cpu_count(), 64)
    d.execute("INSERT INTO x(x) VALUES ('threads=1')")
    assert stats(d, "x")["threads"] == 1
    expect_error(d, "INSERT INTO x(x) VALUES ('threads=-1')", "threads")
    d.executemany("INSERT INTO x(rowid, e) VALUES (?, ?)", [(i, f"[{i},1,0,0]") for i in range(1, 100)])
    assert stats(d, "x")["parallel_links"] == 0
    integrity(d, "x")


def test_kept_link_distances_follow_the_links():
    # A private node keeps the distance to each bottom-layer link, so that
    # a full node pruning its links measures each neighbour once; the
    # integrity check measures every kept one again. Inside the
    # transaction the nodes are the ones the inserts and deletes changed
    # (links appended, dropped, split and sorted after each statement).
    d = connect(EXT)
    d.execute(f"CREATE VIRTUAL TABLE t USING vectordb({DECL1})")
    rows = list(enumerate(BASE[:2000], start=1))
    d.execute("BEGIN")
    for i in range(0, len(rows), 250):
        d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                      ((rid, v.tobytes()) for rid, v in rows[i:i + 250]))
    integrity(d)
    d.executemany("DELETE FROM t WHERE rowid = ?", ((rid,) for rid in range(1, 2001, 7)))
    d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                  ((3000 + i, v.tobytes()) for i, v in enumerate(EXTRA[:300])))
    integrity(d)
    d.execute("COMMIT")
    assert recall(d, ef=64) >= 0.95


def test_rolled_back_node_ids_come_back_with_their_own_codes():
    # The private cache keeps each node's code by node id. A ROLLBACK hands
    # the same ids to the next inserts, with other vectors: each must be
    # found by its own vector, not walked past under the code of the one
    # rolled back.
    d = connect(EXT)
    d.execute(f"CREATE VIRTUAL TABLE t USING vectordb({DECL1})")
    d.execute("BEGIN")
    d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                  ((rid, v.tobytes()) for rid, v in enumerate(BASE[:1000], start=1)))
    d.execute("COMMIT")
    first, second = EXTRA[:100], 255.0 - EXTRA[100:200]
    d.execute("BEGIN")
    d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                  ((5000 + i, v.tobytes()) for i, v in enumerate(first)))
    assert knn(d, first[3], 1)[0] == (5003, 0.0)
    d.execute("ROLLBACK")
    d.execute("BEGIN")
    d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                  ((6000 + i, v.tobytes()) for i, v in enumerate(second)))
    assert [knn(d, v, 1)[0] for v in second] == [(6000 + i, 0.0) for i in range(len(second))]
    integrity(d)
    d.execute("COMMIT")
    assert [knn(d, v, 1)[0] for v in second] == [(6000 + i, 0.0) for i in range(len(second))]


def test_bulk_insert_within_a_tiny_cache_budget():
    # cache_mb=1 cannot hold the rows a transaction links: the cache drops
    # clean nodes, then chunks, then every code it keeps, between
    # statements, and codes them again as the walks come back to them.
    d = connect(EXT)
    d.execute(f"CREATE VIRTUAL TABLE t USING vectordb({DECL1})")
    d.execute("INSERT INTO t(t) VALUES ('cache_mb=1')")
    d.execute("BEGIN")
    for i in range(0, min(1500, len(BASE)), 100):
        d.executemany("INSERT INTO t(rowid, e, label) VALUES (?, ?, 0)",
                      ((rid, BASE[rid - 1].tobytes()) for rid in range(i + 1, i + 101)))
        assert knn(d, BASE[i], 1)[0] == (i + 1, 0.0)
    st = {k: v for c, k, v in d.execute("SELECT * FROM vectordb_stats('t')")}
    assert st["cache_bytes"] <= 1 << 20, st
    integrity(d)
    d.execute("COMMIT")
    assert recall(d, ef=64, queries=QUERIES[:30]) >= 0.95


run(globals())
