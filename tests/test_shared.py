"""The process-wide shared HNSW index: one copy per (file, index) in a
process, shared by every connection, at the right snapshot for each.

usage: /usr/bin/python3 tests/test_shared.py EXTENSION_PATH [N] [name-filter]

Sharing is observed through vectordb_stats (shared_connections, misses,
shared_cache_bytes); correctness by comparing the graph's answers with
exact search on the same connection, inside the same transaction.
"""
import atexit
import os
import shutil
import sqlite3
import sys
import tempfile
import threading

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, one, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
N = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 3000
TMP = tempfile.mkdtemp(prefix="vectordb-shared-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
DIM = 32
rng = np.random.default_rng(7)
BASE = rng.standard_normal((N, DIM)).astype(np.float32)
QUERIES = rng.standard_normal((40, DIM)).astype(np.float32)
PATH = os.path.join(TMP, "main.db")


def open_db(path=PATH):
    db = connect(EXT, path)
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def knn(db, q, k=10, exact=False):
    extra = "AND ef_search = 0" if exact else ""
    return [r for r, _ in db.execute(f"SELECT rowid, distance FROM t WHERE e MATCH ? AND k = ? {extra}",
                                     (q.tobytes(), k))]


def stats(db):
    return {k: v for c, k, v in db.execute("SELECT * FROM vectordb_stats('t')") if c == "e"}


def recall(db, queries=QUERIES):
    found = total = 0
    for q in queries:
        want = set(knn(db, q, exact=True))
        found += len(want & set(knn(db, q)))
        total += len(want)
    return found / total


def integrity(db):
    assert one(db, "SELECT vectordb_check('t')") == "ok"


setup = open_db()
setup.execute("PRAGMA journal_mode=WAL")
setup.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[32] INDEXED BY hnsw(m=8, ef_construction=64), tag integer)")
setup.execute("BEGIN")
setup.executemany("INSERT INTO t(rowid, e, tag) VALUES (?, ?, ?)", ((i + 1, BASE[i].tobytes(), i % 7) for i in range(N)))
setup.execute("COMMIT")


def test_connections_of_a_process_share_one_copy():
    conns = [open_db() for _ in range(4)]
    for q in QUERIES:
        knn(conns[0], q)
    for c in conns[1:3]:                     # a connection joins at its first walk
        knn(c, QUERIES[0])
    warm = stats(conns[0])
    assert warm["shared_connections"] >= 3, warm
    assert warm["shared_cache_bytes"] > 0 and warm["private_cache_bytes"] < warm["shared_cache_bytes"], warm
    # Another connection's queries find what the first one loaded.
    for q in QUERIES:
        knn(conns[3], q)
    after = stats(conns[3])
    assert after["misses"] == warm["misses"], (warm["misses"], after["misses"])
    assert after["hits"] > warm["hits"], (warm["hits"], after["hits"])
    assert after["shared_cache_bytes"] == stats(conns[1])["shared_cache_bytes"]
    assert recall(conns[2]) > 0.9
    for c in conns:
        c.close()


def test_two_paths_to_one_file_share_and_a_copy_does_not():
    link = os.path.join(TMP, "link.db")
    os.symlink(PATH, link)
    a, b = open_db(), open_db(link)
    knn(a, QUERIES[0])
    n = stats(a)["shared_connections"]
    knn(b, QUERIES[0])
    assert stats(a)["shared_connections"] == n + 1
    assert n >= 1, n
    copy = os.path.join(TMP, "copy.db")
    a.execute("VACUUM INTO ?", (copy,))
    c = open_db(copy)
    knn(c, QUERIES[0])
    assert stats(c)["shared_connections"] == 1, stats(c)
    assert stats(a)["shared_connections"] == n + 1
    for x in (a, b, c):
        x.close()


def test_memory_and_temporary_databases_are_private():
    for path in (":memory:", ""):
        db = connect(EXT, path)
        db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[32] INDEXED BY hnsw(m=8))")
        db.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", ((i + 1, BASE[i].tobytes()) for i in range(200)))
        assert knn(db, BASE[5], 1) == [6]
        st = stats(db)
        assert st["shared_connections"] == 0 and st["shared_cache_bytes"] == 0, st
        db.close()


def test_a_read_transaction_keeps_its_snapshot():
    reader, writer, fresh = open_db(), open_db(), open_db()
    q = QUERIES[3]
    reader.execute("BEGIN")
    before = knn(reader, q)
    assert len(set(before) & set(knn(reader, q, exact=True))) >= 8
    # Another connection of the process commits a row at the query, and
    # yet another brings the shared copy to that commit.
    writer.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 0)", (N + 100, q.tobytes()))
    assert knn(fresh, q, 1) == [N + 100]
    assert knn(reader, q) == before, "a reader saw a row committed after its snapshot"
    assert recall(reader) > 0.9, "the old snapshot's rows are found at the usual recall"
    reader.execute("COMMIT")
    assert knn(reader, q, 1) == [N + 100]
    writer.execute("DELETE FROM t WHERE rowid = ?", (N + 100,))
    assert knn(reader, q) == before
    for x in (reader, writer, fresh):
        x.close()


def test_uncommitted_rows_stay_private_to_their_writer():
    writer, other = open_db(), open_db()
    q = QUERIES[4]
    base = knn(other, q)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 0)", (N + 200, q.tobytes()))
    writer.execute("DELETE FROM t WHERE rowid = ?", (base[1],))
    assert knn(writer, q)[0] == N + 200 and base[1] not in knn(writer, q)
    assert knn(writer, q)[:2] == knn(writer, q, exact=True)[:2]
    assert knn(other, q) == base, "another connection saw uncommitted changes"
    writer.execute("ROLLBACK")
    assert knn(writer, q) == base and knn(other, q) == base
    # Committed, everyone sees it; the shared copy follows the log.
    before = stats(other)
    writer.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 0)", (N + 200, q.tobytes()))
    assert knn(other, q)[0] == N + 200
    after = stats(other)
    assert after["full_reloads"] == before["full_reloads"] and after["refreshes"] > before["refreshes"], after
    writer.execute("DELETE FROM t WHERE rowid = ?", (N + 200,))
    assert knn(other, q) == base
    integrity(other)
    writer.close()
    other.close()


def test_writer_copies_from_the_shared_copy_and_keeps_the_graph_sound():
    """A write transaction reads the nodes it has not changed from the
    shared copy. With a 2 MiB budget the shared copy holds the whole graph
    before the transaction while the transaction's private cache overflows:
    nodes it wrote are flushed and evicted, and must then come from the
    table, not from the (older) shared copy, or the links written back
    would be one-sided."""
    path = os.path.join(TMP, "writer.db")
    w = open_db(path)
    w.execute("PRAGMA journal_mode=WAL")
    w.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[32] INDEXED BY hnsw(m=8, ef_construction=64), tag integer)")
    first = np.random.default_rng(12).standard_normal((1500, DIM)).astype(np.float32)
    w.executemany("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 0)", ((i + 1, first[i].tobytes()) for i in range(1500)))
    w.execute("INSERT INTO t(t) VALUES ('cache_mb=2')")
    reader = open_db(path)
    for q in first[::3]:
        knn(reader, q)
    assert stats(reader)["cached_nodes"] > 1400, stats(reader)
    more = np.random.default_rng(11).standard_normal((3000, DIM)).astype(np.float32)
    w.execute("BEGIN")
    for i in range(3000):                    # one statement each: each flushes at its savepoint
        w.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 1)", (10000 + i, more[i].tobytes()))
        if i % 5 == 0:
            w.execute("DELETE FROM t WHERE rowid = ?", (i // 5 + 1,))
    w.execute("COMMIT")
    integrity(w)
    w.execute("INSERT INTO t(t) VALUES ('cache_mb=256')")
    assert recall(reader) > 0.85 and recall(w) > 0.85
    w.close()
    reader.close()


def test_rollback_to_and_failed_statements_leave_the_copy_exact():
    writer, other = open_db(), open_db()
    qs = QUERIES[5:15]
    want = [knn(other, q, exact=True) for q in qs]
    writer.execute("BEGIN")
    writer.execute("SAVEPOINT s")
    writer.executemany("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 1)",
                       ((N + 300 + i, q.tobytes()) for i, q in enumerate(qs)))
    writer.execute("ROLLBACK TO s")
    writer.execute("RELEASE s")
    # A statement that fails halfway: rows 1..4 then a duplicate rowid.
    try:
        writer.execute("INSERT INTO t(rowid, e, tag) SELECT value, ?, 1 FROM json_each('[%d,%d,%d,1]')"
                       % (N + 400, N + 401, N + 402), (qs[0].tobytes(),))
        raise AssertionError("the duplicate rowid was accepted")
    except sqlite3.Error:
        pass
    writer.execute("COMMIT")
    for q, w in zip(qs, want):
        assert knn(writer, q, exact=True) == w
        assert knn(other, q, exact=True) == w
    assert recall(other, qs) > 0.9 and recall(writer, qs) > 0.9
    integrity(writer)
    writer.close()
    other.close()


def test_restored_file_is_not_answered_from_the_old_copy():
    """A restore through the backup API writes another history into the
    same file (same inode, same index token): the copy must notice that
    the change log was rewritten and reload."""
    backup_path = os.path.join(TMP, "backup.db")
    src = open_db()
    bak = sqlite3.connect(backup_path)
    src.backup(bak)
    bak.close()
    q1, q2 = QUERIES[20], QUERIES[21]
    # Two commits after the backup; a reader's copy reflects them.
    src.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 2)", (N + 500, q1.tobytes()))
    src.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 2)", (N + 501, q2.tobytes()))
    reader = open_db()
    assert knn(reader, q1, 1) == [N + 500]
    # Restore the backup into the live file, then two other commits, so
    # the log reaches the same seq with other contents.
    restore = open_db()
    b = sqlite3.connect(backup_path)
    b.backup(restore)
    b.close()
    src.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 2)", (N + 600, q2.tobytes()))
    src.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 2)", (N + 601, QUERIES[22].tobytes()))
    assert knn(reader, q1, 1) != [N + 500], "a row from before the restore came back"
    assert knn(reader, q2, 1) == [N + 600]
    assert recall(reader, QUERIES[:10]) > 0.9
    integrity(reader)
    src.execute("DELETE FROM t WHERE rowid IN (?, ?)", (N + 600, N + 601))
    for x in (src, reader, restore):
        x.close()


def test_rewritten_log_row_forces_a_reload():
    """The same log seq with other contents (the shape a restore leaves
    when the schema is not reloaded): here the last log row is deleted by
    hand, so the next commit writes that seq again."""
    writer, reader = open_db(), open_db()
    q = QUERIES[23]
    assert N + 700 not in knn(reader, q)
    before = stats(reader)["full_reloads"]
    writer.execute("DELETE FROM t_hnswlog00 WHERE seq = (SELECT max(seq) FROM t_hnswlog00)")
    writer.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 2)", (N + 700, q.tobytes()))
    assert knn(reader, q, 1) == [N + 700], "the copy answered from a log row that was rewritten"
    assert stats(reader)["full_reloads"] == before + 1
    writer.execute("DELETE FROM t WHERE rowid = ?", (N + 700,))
    integrity(reader)
    writer.close()
    reader.close()


def test_threads_with_their_own_connections_agree_with_exact():
    """Four reader threads and a writer thread, each with its own
    connection: every reader answer inside a read transaction is compared
    with exact search in the same transaction."""
    errors, done = [], threading.Event()
    rows_at_some_time = set(range(1, N + 1)) | set(range(N + 1000, N + 1060))

    def reader(seed):
        db = open_db()
        r = np.random.default_rng(seed)
        try:
            while not done.is_set():
                q = QUERIES[r.integers(len(QUERIES))]
                db.execute("BEGIN")
                got, want = knn(db, q, 10), knn(db, q, 10, exact=True)
                db.execute("COMMIT")
                # Rows of the snapshot only, and the usual recall.
                if len(set(got) & set(want)) < 7 or not set(got) <= rows_at_some_time:
                    errors.append((got, want))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            db.close()

    def writer():
        db = open_db()
        try:
            for i in range(60):
                db.execute("INSERT INTO t(rowid, e, tag) VALUES (?, ?, 3)", (N + 1000 + i, QUERIES[i % 40].tobytes()))
                if i % 3 == 2:
                    db.execute("DELETE FROM t WHERE rowid = ?", (N + 1000 + i - 2,))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            done.set()
            db.close()

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    db = open_db()
    db.execute("DELETE FROM t WHERE rowid > ?", (N + 999,))
    integrity(db)
    db.close()


def private_copy(db):
    """The same database in memory: its walks use a private cache only."""
    copy = connect(EXT, ":memory:")
    db.backup(copy)
    assert stats(copy)["shared_connections"] == 0
    return copy


def answers(db, queries, ef):
    return [list(db.execute("SELECT rowid, distance FROM t WHERE e MATCH ? AND k = 10 AND ef_search = ?",
                            (q.tobytes(), ef))) for q in queries]


def test_shared_walk_answers_exactly_like_a_private_walk():
    # The shared copy walks compact records (layer-0 links and codes by
    # node id); a private cache walks its nodes. Over the same graph the two
    # must return the same rows at the same distances, also after commits
    # that re-link nodes the shared copy holds (their records must drop the
    # old links and get the new ones).
    reader, writer = open_db(), open_db()
    queries = rng.standard_normal((60, DIM)).astype(np.float32)
    for ef in (10, 40):
        assert answers(reader, queries, ef) == answers(private_copy(reader), queries, ef)
    # A filter reads each candidate's row id from the shared copy's records.
    filtered = [list(db.execute("SELECT rowid, distance FROM t WHERE e MATCH ? AND k = 10 AND tag = 3",
                                (q.tobytes(),))) for db in (reader, private_copy(reader)) for q in queries[:20]]
    assert filtered[:20] == filtered[20:] and all(len(f) == 10 for f in filtered), filtered[:2]
    for round_ in range(3):
        writer.execute("BEGIN")
        for i in range(40):
            # Near the queries: the new nodes link into the neighbourhoods
            # the reader's walks hold.
            writer.execute("INSERT INTO t(e, tag) VALUES (?, 0)",
                           ((queries[i] + 0.05 * rng.standard_normal(DIM)).astype(np.float32).tobytes(),))
        writer.execute("DELETE FROM t WHERE rowid IN (SELECT rowid FROM t ORDER BY rowid LIMIT 5 OFFSET ?)",
                       (100 * round_,))
        writer.execute("COMMIT")
        for ef in (10, 40):
            got = answers(reader, queries, ef)
            assert got == answers(private_copy(reader), queries, ef), f"round {round_}, ef {ef}"
    assert stats(reader)["shared_connections"] >= 2
    integrity(reader)


def test_a_walk_over_codes_keeps_vectors_of_results_only():
    # The shared copy codes the nodes a walk meets from their vectors but
    # keeps only the vectors its results need, one by one, no chunks (a
    # cold query meets about as many chunks as nodes). A node of layer 0 is
    # kept as its walk record alone: decoded nodes (VdbCNode) only for the
    # layers above. The results' distances stay exact; without codes every
    # vector the walk measures is needed, and its chunk kept.
    for quantizer in ("int8", "none"):
        path = os.path.join(TMP, f"results-{quantizer}.db")
        a = open_db(path)
        a.execute(f"CREATE VIRTUAL TABLE t USING vectordb(e float[32] INDEXED BY hnsw(m=8, quantizer={quantizer}), "
                  "chunk_size=8)")
        a.execute("BEGIN")
        a.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", ((i + 1, BASE[i].tobytes()) for i in range(N)))
        a.execute("COMMIT")
        a.close()
        b = open_db(path)
        got = answers(b, QUERIES[:1], 64)[0]
        st = stats(b)
        assert st["shared_connections"] == 1 and st["misses"] > 100, st
        if quantizer == "int8":
            assert st["cached_chunks"] == 0, st
            assert 10 <= st["shared_vectors"] <= 2 * 10, st      # the re-ranked 2k at most
        else:
            assert st["cached_chunks"] > 2 * 10 and st["shared_vectors"] == 0, st
        upper = sum(v for key, v in st.items() if key.startswith("nodes_level_") and key != "nodes_level_0")
        assert 0 < st["shared_decoded_nodes"] <= upper < st["cached_nodes"], st
        want = answers(private_copy(b), QUERIES[:1], 64)[0]
        assert got == want, (got, want)
        exact = {r: d for r, d in b.execute("SELECT rowid, distance FROM t WHERE e MATCH ? AND k = 10 "
                                             "AND ef_search = 0", (QUERIES[0].tobytes(),))}
        for rowid, dist in got:
            if rowid in exact:
                assert abs(dist - exact[rowid]) <= 1e-5 * max(1.0, exact[rowid]), (rowid, dist, exact[rowid])
        assert recall(b, QUERIES[:10]) > 0.9
        b.close()


def test_last_connection_frees_the_copy():
    path = os.path.join(TMP, "lonely.db")
    a = open_db(path)
    a.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[32] INDEXED BY hnsw(m=8))")
    a.executemany("INSERT INTO t(rowid, e) VALUES (?, ?)", ((i + 1, BASE[i].tobytes()) for i in range(300)))
    knn(a, QUERIES[0])
    b = open_db(path)
    knn(b, QUERIES[0])
    assert stats(b)["shared_connections"] == 2
    a.close()
    assert stats(b)["shared_connections"] == 1
    b.close()
    c = open_db(path)
    knn(c, QUERIES[0])
    st = stats(c)
    assert st["shared_connections"] == 1 and st["hits"] > 0 and st["misses"] > 0, st
    c.close()


if __name__ == "__main__":
    run(globals())
