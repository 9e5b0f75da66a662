"""The vectordb command-line tool (cli/vectordb_cli.c): every command, every
documented error and exit code, resuming an import after SIGINT and SIGKILL,
and the progress output on a pipe and on a pseudo-terminal.

usage: python3 tests/test_cli.py [build/bin/vectordb [vectordb-extension [name-filter]]]
"""
import json
import os
import pty
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import connect, one, run  # noqa: E402

import numpy as np  # noqa: E402

CLI = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/bin/vectordb")
EXT = sys.argv[2] if len(sys.argv) > 2 else "./vectordb"
WORK = tempfile.mkdtemp(prefix="vdb-cli-")
RNG = np.random.default_rng(16)
DEADLINE = 30.0                      # seconds any one child may take


def path(name):
    return os.path.join(WORK, name)


def cli(*args, expect=0, fragments=(), stdin=None):
    """Run the tool; check its exit code and that stderr+stdout hold every
    fragment. Returns (stdout, stderr)."""
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True,
                       timeout=DEADLINE, stdin=stdin)
    out = p.stdout + p.stderr
    assert p.returncode == expect, \
        f"vectordb {' '.join(map(str, args))}: exit {p.returncode}, expected {expect}\n{out}"
    for f in fragments:
        assert f in out, f"vectordb {' '.join(map(str, args))}: {f!r} not in\n{out}"
    return p.stdout, p.stderr


def db_rows(dbfile, table, column="embedding"):
    """{rowid: float32 vector bytes} of a table."""
    db = connect(EXT, dbfile)
    try:
        return dict(db.execute(f'SELECT rowid, "{column}" FROM "{table}"').fetchall())
    finally:
        db.close()


def assert_rows_equal(dbfile, table, matrix, rowids=None):
    rows = db_rows(dbfile, table)
    rowids = list(range(1, len(matrix) + 1)) if rowids is None else rowids
    assert sorted(rows) == sorted(rowids), \
        f"{table}: rowids {sorted(rows)[:5]}... ({len(rows)}), expected {len(rowids)} from {rowids[:5]}"
    for rid, vec in zip(rowids, matrix):
        assert rows[rid] == np.asarray(vec).tobytes(), f"{table}: row {rid} differs from the file"


def write_fvecs(name, m):
    with open(path(name), "wb") as f:
        for r in m:
            f.write(struct.pack("<i", len(r)) + r.astype("<f4").tobytes())
    return path(name)


def write_csv(name, m, header=None):
    with open(path(name), "w") as f:
        if header:
            f.write(header + "\n")
        for r in m:
            f.write(",".join(repr(float(x)) for x in r) + "\n")
    return path(name)


def write_jsonl(name, m, ids=None, key=None):
    with open(path(name), "w") as f:
        for i, r in enumerate(m):
            v = [float(x) for x in r]
            if key is None and ids is None:
                f.write(json.dumps(v) + "\n")
            else:
                o = {key or "embedding": v}
                if ids is not None:
                    o["id"] = ids[i]
                f.write(json.dumps(o) + "\n")
    return path(name)


def write_text(name, text):
    with open(path(name), "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    return path(name)


M = RNG.standard_normal((300, 8)).astype(np.float32)
np.save(path("m.npy"), M)


# ---- help, version, usage ---------------------------------------------------------

def test_help_and_version():
    out, _ = cli("--version")
    assert out.startswith("vectordb 0.") and "SQLite 3." in out, out
    out, _ = cli("--help", fragments=("import", "stats", "check", "query", "exit status"))
    for cmd in ["import", "stats", "check", "query"]:
        out, _ = cli(cmd, "--help", fragments=(f"usage: vectordb {cmd}", "exit status"))


def test_usage_errors_exit_1():
    cli(expect=1, fragments=("usage: vectordb COMMAND",))
    cli("frobnicate", expect=1, fragments=("unknown command 'frobnicate'",))
    cli("import", path("u.db"), "t", expect=1, fragments=("expected DATABASE TABLE FILE, got 2 arguments",))
    cli("import", path("u.db"), "t", path("m.npy"), "--bogus", expect=1, fragments=("unknown option --bogus",))
    cli("import", path("u.db"), "t", path("m.npy"), "--batch", expect=1, fragments=("--batch needs a value",))
    cli("import", path("u.db"), "t", path("m.npy"), "--batch", "0", expect=1,
        fragments=("--batch expects an integer from 1",))
    cli("import", path("u.db"), "t", path("m.npy"), "--batch", "12x", expect=1, fragments=("got '12x'",))
    cli("import", path("u.db"), "t", write_text("v.txt", "1,2\n"), expect=1,
        fragments=("unknown file type '.txt'",))
    cli("import", path("u.db"), "t", path("missing.npy"), expect=1,
        fragments=("cannot open", "missing.npy", "No such file"))
    cli("stats", path("u.db"), expect=1, fragments=("expected DATABASE TABLE",))
    cli("check", path("u.db"), "t", "--json", expect=1, fragments=("unknown option --json",))
    cli("query", path("u.db"), "t", expect=1, fragments=("exactly one of --vector and --row",))
    cli("query", path("u.db"), "t", "--row", "1", "--vector", "[1]", expect=1,
        fragments=("exactly one of --vector and --row",))
    cli("query", path("u.db"), "t", "--row", "1", "--k", "16385", expect=1, fragments=("--k expects",))


# ---- import: every format -------------------------------------------------------------

def test_import_npy_every_dtype():
    for name, arr, int8 in [("f32", M, False), ("f64be", M.astype(">f8"), False),
                            ("u8", RNG.integers(0, 256, (40, 5)).astype(np.uint8), False),
                            ("i8", RNG.integers(-128, 128, (40, 5)).astype(np.int8), True)]:
        np.save(path(name + ".npy"), arr)
        _, err = cli("import", path("npy.db"), name, path(name + ".npy"),
                     fragments=(f"imported {len(arr)} rows into {name}",))
        expected = arr.astype(np.int8) if int8 else arr.astype(np.float32)
        assert_rows_equal(path("npy.db"), name, expected)
        decl = one(sqlite3.connect(path("npy.db")), "SELECT sql FROM sqlite_schema WHERE name = ?", name)
        want = f"int8[{arr.shape[1]}]" if int8 else f"float[{arr.shape[1]}]"
        assert want in decl, decl


def test_import_fvecs_csv_jsonl():
    cli("import", path("f.db"), "t", write_fvecs("a.fvecs", M[:50]))
    assert_rows_equal(path("f.db"), "t", M[:50])
    # CSV with and without a header line
    cli("import", path("f.db"), "c1", write_csv("h.csv", M[:20], header="a,b,c,d,e,f,g,h"))
    assert_rows_equal(path("f.db"), "c1", M[:20])
    cli("import", path("f.db"), "c2", write_csv("n.csv", M[:20]))
    assert_rows_equal(path("f.db"), "c2", M[:20])
    write_text("crlf.csv", "x,y\r\n1, 2.5\r\n-3e2,4\r\n")
    cli("import", path("f.db"), "c3", path("crlf.csv"))
    assert_rows_equal(path("f.db"), "c3", np.array([[1, 2.5], [-300, 4]], np.float32))
    # JSON lines: arrays; objects with ids; another key
    cli("import", path("f.db"), "j1", write_jsonl("a.jsonl", M[:10]))
    assert_rows_equal(path("f.db"), "j1", M[:10])
    ids = [100 + 7 * i for i in range(10)]
    cli("import", path("f.db"), "j2", write_jsonl("id.jsonl", M[:10], ids=ids))
    assert_rows_equal(path("f.db"), "j2", M[:10], rowids=ids)
    cli("import", path("f.db"), "j3", write_jsonl("k.jsonl", M[:10], key="vec"), "--column", "vec")
    rows = db_rows(path("f.db"), "j3", "vec")
    assert len(rows) == 10 and rows[1] == M[0].tobytes()


def test_import_create_and_existing_table():
    db = path("create.db")
    cli("import", db, "t", path("m.npy"), "--create",
        "id integer primary key, embedding float[8] distance_metric=cosine INDEXED BY hnsw(m=8), label text")
    assert_rows_equal(db, "t", M)
    sql = one(sqlite3.connect(db), "SELECT sql FROM sqlite_schema WHERE name = 't'")
    assert "hnsw(m=8)" in sql and "cosine" in sql
    cli("check", db, "t", fragments=("ok",))
    # An existing table with two vector columns: --column picks one.
    c = connect(EXT, db)
    c.execute("CREATE VIRTUAL TABLE two USING vectordb(a float[3], b float[8])")
    c.close()
    cli("import", db, "two", path("m.npy"), expect=1,
        fragments=("m.npy record 1 (rowid 1)", "column a expects 3 dimensions, got 8"))
    cli("import", db, "two", path("m.npy"), "--column", "nosuch", expect=1,
        fragments=("table two has no vector column nosuch",))
    cli("import", db, "two", path("m.npy"), "--column", "b", expect=1,
        fragments=("cannot be NULL",))       # column a is required too
    cli("import", db, "bad", path("m.npy"), "--create", "embedding float[8] bogus", expect=1,
        fragments=("cannot create the table",))


# ---- import: malformed input ----------------------------------------------------------

BAD_INPUTS = [
    # (file name, content, fragments of the error)
    ("bad1.csv", "1,2,3\n1,2\n", ["bad1.csv line 2", "2 dimensions, the first record had 3"]),
    ("bad2.csv", "1,2\n3,nan\n", ["bad2.csv line 2", "field 2 is not a decimal number: 'nan'"]),
    ("bad3.csv", "1,2\n3,1e39\n", ["bad3.csv line 2", "beyond the float32 range"]),
    ("bad4.csv", "1,2\n\n3,4\n", ["bad4.csv line 2", "empty line"]),
    ("bad5.csv", "1,2\n0x10,4\n", ["bad5.csv line 2", "field 1 is not a decimal number: '0x10'"]),
    ("bad6.csv", "1,2\n3,\n", ["bad6.csv line 2", "field 2 is not a decimal number"]),
    ("bad1.jsonl", "[1,2]\n[1,2,\n", ["bad1.jsonl line 2", "malformed JSON"]),
    ("bad2.jsonl", "[1,2]\n{\"vec\": [1,2]}\n", ["bad2.jsonl line 2", "no \"embedding\" field"]),
    ("bad3.jsonl", "[1,2]\n{\"embedding\": [1,2], \"id\": 2.5}\n", ["line 2", "\"id\" must be an integer, got real"]),
    ("bad4.jsonl", "[1,2]\n42\n", ["line 2", "expected a JSON array or object, got integer"]),
    ("bad5.jsonl", "[1,2]\n[1,\"x\"]\n", ["line 2", "vec_f32"]),
    ("bad6.jsonl", "[1,2]\n[]\n", ["line 2", "vec_f32"]),
    ("bad7.jsonl", "[1,2]\n[1,2,3]\n", ["line 2", "3 dimensions, the first record had 2"]),
    ("bad1.npy", b"NOTNUMPY" + b"\0" * 100, ["bad1.npy at byte offset 0", "not a .npy file"]),
    ("bad1.fvecs", struct.pack("<i2f", 2, 1, 2) + struct.pack("<i3f", 3, 1, 2, 3),
     ["bad1.fvecs at byte offset 12", "record 2 has 3 dimensions, the first had 2"]),
    ("bad2.fvecs", struct.pack("<i2f", 2, 1, 2) + struct.pack("<if", 2, 1),
     ["bad2.fvecs at byte offset 12", "truncated .fvecs record 2"]),
    ("bad3.fvecs", struct.pack("<i2f", 2, 1, 2) + struct.pack("<i", 0),
     ["byte offset 12", "record 2 announces 0 dimensions"]),
    ("bad4.fvecs", struct.pack("<i2f", 2, 1, float("inf")), ["record 1 element 1 is not a finite number"]),
]


def npy_bytes(a):
    import io
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def test_malformed_input_exit_1():
    cases = list(BAD_INPUTS)
    good = npy_bytes(M[:3])
    cases += [
        ("bad2.npy", good[:-5], ["bad2.npy at byte offset 128", "truncated .npy data"]),
        ("bad3.npy", good + b"x", ["1 bytes after the .npy data"]),
        ("bad4.npy", npy_bytes(M[:3].astype(np.int32)), ["dtype '<i4' is not supported"]),
        ("bad5.npy", npy_bytes(np.asfortranarray(M[:3])), ["Fortran-order arrays are not supported"]),
        ("bad6.npy", npy_bytes(M[:8].reshape(2, 2, 16)), ["a 3-D array"]),
        ("bad7.npy", npy_bytes(M[0]), ["a 1-D array"]),
        ("bad8.npy", npy_bytes(np.array([[1, np.nan]], np.float32)), ["record 1 element 1 is not a finite number"]),
        ("bad9.npy", npy_bytes(np.array([[1e300, 0]])), ["record 1 element 0 is beyond the float32 range"]),
        ("bad10.npy", good[:8] + b"\xff\xff" + good[10:], ["truncated .npy header"]),
    ]
    for name, content, fragments in cases:
        cli("import", path("bad.db"), name.replace(".", "_"), write_text(name, content), expect=1,
            fragments=fragments)


def test_bad_record_keeps_complete_batches():
    # --batch 3, record 8 is bad: batches 1-3 and 4-6 stay, 7 is rolled back.
    good = M[:10]
    lines = [json.dumps([float(x) for x in r]) for r in good]
    lines[7] = "[1, 2, oops]"
    write_text("partial.jsonl", "\n".join(lines) + "\n")
    cli("import", path("partial.db"), "t", path("partial.jsonl"), "--batch", "3", expect=1,
        fragments=("partial.jsonl line 8: malformed JSON",))
    assert_rows_equal(path("partial.db"), "t", good[:6])
    # Fixed, the same command continues from row 7.
    write_jsonl("partial.jsonl", good)
    _, err = cli("import", path("partial.db"), "t", path("partial.jsonl"), "--batch", "3",
                 fragments=("imported 4 rows into t (6 were already there)",))
    assert_rows_equal(path("partial.db"), "t", good)


def test_resume_refuses_another_file():
    db = path("other.db")
    cli("import", db, "t", path("m.npy"))
    cli("import", db, "t", path("m.npy"), fragments=("imported 0 rows into t (300 were already there)",))
    np.save(path("other.npy"), M[::-1].copy())
    cli("import", db, "t", path("other.npy"), expect=1,
        fragments=("its row 1 is not record 1 of", "not filled from this file"))
    np.save(path("short.npy"), M[:100])
    cli("import", db, "t", path("short.npy"), expect=1,
        fragments=("already holds 300 rows, more than the 100 records",))
    # Same first and last row, but another row deleted: the next rowid is taken.
    c = connect(EXT, db)
    c.execute("DELETE FROM t WHERE rowid = 5")
    c.close()
    cli("import", db, "t", path("m.npy"), expect=1, fragments=("not filled from this file",))
    assert len(db_rows(db, "t")) == 299


# ---- interruption and resume ------------------------------------------------------------

BIG = RNG.standard_normal((40000, 4)).astype(np.float32)
np.save(path("big.npy"), BIG)


def start_import(db, extra=()):
    return subprocess.Popen([CLI, "import", db, "t", path("big.npy"), "--batch", "200",
                             "--progress-interval", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_first_progress(p):
    """Block until the child reports its first committed batch."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], deadline - time.monotonic())
        if not r:
            break
        line = p.stderr.readline()
        assert line, "the import ended before reporting progress"
        if line.startswith("progress: "):
            return line
    raise AssertionError("no progress line within the deadline")


def test_sigint_commits_and_resumes():
    db = path("sigint.db")
    p = start_import(db)
    wait_first_progress(p)
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(DEADLINE) == 130, (p.returncode, rest)
    assert "interrupted by signal 2" in rest and "run the same command again" in rest, rest
    n = len(db_rows(db, "t"))
    assert 200 <= n < len(BIG), n
    assert_rows_equal(db, "t", BIG[:n])
    cli("import", db, "t", path("big.npy"), "--quiet")
    assert_rows_equal(db, "t", BIG)
    cli("check", db, "t", fragments=("ok",))


def test_sigkill_loses_only_the_open_batch_and_resumes():
    db = path("sigkill.db")
    p = start_import(db)
    wait_first_progress(p)
    p.kill()
    p.wait(DEADLINE)
    p.stderr.close()
    p.stdout.close()
    n = len(db_rows(db, "t"))
    assert n % 200 == 0 and 200 <= n < len(BIG), n
    assert_rows_equal(db, "t", BIG[:n])
    _, err = cli("import", db, "t", path("big.npy"), "--batch", "5000",
                 fragments=(f"imported {len(BIG) - n} rows into t ({n} were already there)",))
    assert_rows_equal(db, "t", BIG)
    c = connect(EXT, db)
    assert one(c, "SELECT count(DISTINCT rowid) FROM t") == len(BIG)
    c.close()


# ---- progress ----------------------------------------------------------------------------

def test_progress_on_a_pipe_is_plain_lines():
    _, err = cli("import", path("prog.db"), "t", path("m.npy"), "--batch", "100", "--progress-interval", "0")
    lines = err.splitlines()
    assert "\r" not in err and "\x1b" not in err, repr(err)
    prog = [ln for ln in lines if ln.startswith("progress: ")]
    assert [ln.split()[1] for ln in prog] == ["100", "200", "300"], lines
    assert "/ 300 rows" in prog[0] and "rows/s, ETA" in prog[0], prog[0]
    assert lines[-1].startswith("imported 300 rows into t (0 were already there)"), lines
    _, err = cli("import", path("prog.db"), "q", path("m.npy"), "--quiet")
    assert err == "", repr(err)


def test_progress_on_a_terminal_redraws_in_place():
    master, slave = pty.openpty()
    p = subprocess.Popen([CLI, "import", path("tty.db"), "t", path("m.npy"), "--batch", "50"],
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], deadline - time.monotonic())
        if not r:
            break
        try:
            data = os.read(master, 4096)
        except OSError:            # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(DEADLINE) == 0
    out = b"".join(chunks).decode()
    assert "\r\x1b[K[" in out, repr(out)
    assert "300 / 300 rows (100.0%)" in out and "rows/s" in out and "ETA" in out, repr(out)
    assert "progress: " not in out, repr(out)
    assert "imported 300 rows" in out, repr(out)


# ---- stats, check, query ------------------------------------------------------------------

QDB = path("q.db")


def make_query_db():
    if os.path.exists(QDB):
        return
    cli("import", QDB, "t", path("m.npy"), "--quiet", "--create",
        "embedding float[8], label integer, +note text")
    c = connect(EXT, QDB)
    c.execute("UPDATE t SET label = rowid % 3")
    c.close()


def test_stats():
    make_query_db()
    out, _ = cli("stats", QDB, "t")
    lines = out.splitlines()
    assert lines[0].split() == ["column", "key", "value"], lines
    assert ["rows", "300"] in [ln.split() for ln in lines], lines
    assert ["embedding", "index", "flat"] in [ln.split() for ln in lines], lines
    out, _ = cli("stats", QDB, "t", "--json")
    figures = json.loads(out)
    assert {"column": None, "key": "rows", "value": 300} in figures, figures
    assert {"column": "embedding", "key": "index", "value": "flat"} in figures, figures
    cli("stats", QDB, "nosuch", expect=1, fragments=("no such table: main.nosuch",))


def exact(q, k, mask=None):
    d = np.sqrt(((M.astype(np.float64) - q) ** 2).sum(1))
    ids = np.arange(1, len(M) + 1)
    if mask is not None:
        d, ids = d[mask], ids[mask]
    order = np.lexsort((ids, d))[:k]
    return list(ids[order]), d[order]


def test_query():
    make_query_db()
    q = RNG.standard_normal(8).astype(np.float32)
    qjson = json.dumps([float(x) for x in q])
    out, _ = cli("query", QDB, "t", "--vector", qjson, "--k", "5")
    lines = out.splitlines()
    assert lines[0].split() == ["rowid", "distance"], lines
    got = [int(ln.split()[0]) for ln in lines[1:]]
    want, dist = exact(q, 5)
    assert got == want, (got, want)
    assert np.allclose([float(ln.split()[1]) for ln in lines[1:]], dist, rtol=1e-5)
    out, _ = cli("query", QDB, "t", "--vector", qjson, "--k", "4", "--json", "--where", "label = 1 AND rowid > 10")
    res = json.loads(out)
    ids = np.arange(1, len(M) + 1)
    want, dist = exact(q, 4, (ids % 3 == 1) & (ids > 10))
    assert [r["rowid"] for r in res] == want, (res, want)
    assert np.allclose([r["distance"] for r in res], dist, rtol=1e-5)
    out, _ = cli("query", QDB, "t", "--row", "7", "--k", "3", "--json")
    res = json.loads(out)
    want, _ = exact(M[6].astype(np.float64), 3)
    assert [r["rowid"] for r in res] == want and res[0]["rowid"] == 7 and res[0]["distance"] == 0, res


def test_query_errors():
    make_query_db()
    cli("query", QDB, "t", "--vector", "[1,2]", expect=1,
        fragments=("query vector for column embedding has 2 dimensions",))
    cli("query", QDB, "t", "--vector", "[1,2", expect=1, fragments=("malformed JSON",))
    cli("query", QDB, "t", "--row", "12345", expect=1, fragments=("table t has no row 12345",))
    cli("query", QDB, "t", "--row", "1", "--where", "nosuch = 1", expect=1,
        fragments=("check --where", "no such column: nosuch"))
    cli("query", QDB, "t", "--row", "1", "--where", "1) ; DELETE FROM t; SELECT (1", expect=1,
        fragments=("--where must be one condition",))
    cli("query", QDB, "t", "--row", "1", "--column", "label", expect=1,
        fragments=("table t has no vector column label",))
    cli("query", QDB, "nosuch", "--row", "1", expect=1, fragments=("no such table",))
    assert len(db_rows(QDB, "t")) == 300


def test_check_ok_corrupt_and_database_errors():
    db = path("corrupt.db")
    cli("import", db, "t", path("m.npy"), "--quiet", "--create", "embedding float[8] INDEXED BY hnsw(m=4)")
    out, _ = cli("check", db, "t")
    assert out == "ok\n", out
    c = sqlite3.connect(db)
    c.execute("UPDATE t_hnsw00 SET links = x'0100' WHERE rowid = (SELECT min(rowid) FROM t_hnsw00)")
    c.commit()
    c.close()
    out, _ = cli("check", db, "t", expect=2)
    assert out.startswith("corrupt: "), out
    cli("check", db, "nosuch", expect=1, fragments=("no such table",))
    # Databases that cannot be opened or are not databases: exit 2.
    cli("check", path("does-not-exist.db"), "t", expect=2, fragments=("cannot open database",))
    assert not os.path.exists(path("does-not-exist.db"))
    write_text("junk.db", "this is not an SQLite database" * 100)
    for cmd in (["check"], ["stats"], ["query", "--row", "1"]):
        cli(cmd[0], path("junk.db"), "t", *cmd[1:], expect=2, fragments=("file is not a database",))
    cli("import", path("junk.db"), "t", path("m.npy"), expect=2, fragments=("file is not a database",))
    cli("import", os.path.join(WORK, "no", "such", "dir.db"), "t", path("m.npy"), expect=2,
        fragments=("cannot open database",))


def test_locked_database_exit_2():
    db = path("locked.db")
    cli("import", db, "t", path("m.npy"), "--quiet")
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("BEGIN EXCLUSIVE")
    try:
        # The tool waits 5 s for the lock, then reports it.
        cli("import", db, "u", path("m.npy"), expect=2, fragments=("database is locked",))
    finally:
        c.execute("ROLLBACK")
        c.close()


if __name__ == "__main__":
    run(globals())
