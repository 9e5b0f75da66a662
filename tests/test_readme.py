"""README.md's SQL and Python examples run as printed, so the README cannot
drift from what the extension does.

usage: /usr/bin/python3 tests/test_readme.py EXTENSION_PATH [unused] [name-filter]

Every ```sql block of README.md runs here: a block that starts with `.load`
in the sqlite3 shell, where a statement's trailing comment that reads like
its output ("-- 1|First|0.0060..., 3|Third|0.0116...") must match the rows
the shell prints (each comma-separated part is a prefix of one output line,
"..." marking where it stops); every other block through Python's sqlite3,
statement by statement, with `:q` bound to a vector of the block's table and
the fixture its section needs (below). The ```python blocks that start with
an import run as scripts from the repository's root. The C examples are
built and run by tests/test_install.sh, the Python and Node packages' by
their own suites.
"""
import os
import re
import sqlite3
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def blocks():
    """(heading, language, text) for every fenced block, in order."""
    heading, out, lang, lines = None, [], None, []
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        for line in f:
            if lang is None and line.startswith("#"):
                heading = line.strip("# \n")
            elif lang is None and line.startswith("```"):
                lang, lines = line[3:].strip(), []
            elif lang is not None and line.startswith("```"):
                out.append((heading, lang, "".join(lines)))
                lang = None
            elif lang is not None:
                lines.append(line)
    return out


def statements(text):
    """Complete SQL statements of a block, comments kept with their line."""
    stmts, cur = [], ""
    for line in text.splitlines(keepends=True):
        cur += line
        if sqlite3.complete_statement(cur):
            stmts.append(cur.strip())
            cur = ""
    assert not cur.strip() or cur.strip().startswith("--"), f"incomplete statement: {cur!r}"
    return stmts


def vector(dim, seed):
    return struct.pack(f"<{dim}f", *[((seed * 31 + i * 17) % 97) / 97.0 + 0.01 for i in range(dim)])


def table_dims(db):
    """Dimensions of every vectordb table's first vector column."""
    dims = {}
    for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE sql LIKE '%USING vectordb(%'"):
        m = re.search(r"\[(\d+)\]", sql)
        if m:
            dims[name] = int(m.group(1))
    return dims


# What a section's block needs that the README does not show: rows to
# query, the `queries` table a join reads, a table to import into.
def fixture_queries(db):
    for stmt in statements(next(t for h, l, t in blocks() if h == "The vectordb table" and l == "sql")):
        db.execute(stmt)
    for i in range(1, 41):
        db.execute("INSERT INTO items(id, embedding, user_id, genre, year, body) VALUES (?, ?, ?, ?, ?, ?)",
                   (i, vector(768, i), 42 if i % 2 else 7, ("drama", "comedy", None)[i % 3], 1985 + i % 20,
                    f"text {i}"))
    db.execute("CREATE TABLE queries(id INTEGER PRIMARY KEY, v BLOB)")
    db.executemany("INSERT INTO queries VALUES (?, ?)", [(1, vector(768, 101)), (2, vector(768, 102))])


def fixture_statistics(db):
    db.execute("CREATE VIRTUAL TABLE items USING vectordb(embedding float[4] INDEXED BY hnsw(), genre text)")
    db.execute("INSERT INTO items(rowid, embedding, genre) VALUES (1, '[1,2,3,4]', 'a')")


FIXTURES = {"Queries": fixture_queries, "Statistics": fixture_statistics}


def run_shell(text, cwd):
    proc = subprocess.run(["sqlite3", "-bail", ":memory:"], input=text.replace("./vectordb", os.path.abspath(EXT)),
                          capture_output=True, text=True, cwd=cwd, timeout=60)
    assert proc.returncode == 0 and not proc.stderr, (proc.returncode, proc.stderr)
    return proc.stdout.splitlines()


def expected_rows(text):
    """The output a block's comments promise, in order."""
    rows = []
    for stmt in statements(text):
        m = re.search(r"--\s*(.+)$", stmt.splitlines()[-1])
        if m and re.match(r"^[\d.\-|A-Za-z]+(\|[^,]*)?(, [\d.\-|A-Za-z]+(\|[^,]*)?)*$", m.group(1).strip()):
            rows += [part.replace("...", "").strip() for part in m.group(1).split(", ")]
    return rows


def test_sql_examples():
    ran = 0
    for heading, lang, text in blocks():
        if lang != "sql":
            continue
        with tempfile.TemporaryDirectory() as cwd:
            if text.lstrip().startswith(".load"):
                out = run_shell(text, cwd)
                want = expected_rows(text)
                assert want, f"{heading}: the shell example promises no output"
                assert len(out) == len(want), (heading, out, want)
                for got, w in zip(out, want):
                    assert got.startswith(w), f"{heading}: printed {got!r}, README says {w!r}"
            elif "readfile(" in text:
                # The shell's readfile() on a file the example names.
                import numpy as np
                np.save(os.path.join(cwd, "embeddings.npy"), np.arange(12, dtype=np.float32).reshape(3, 4))
                out = run_shell(".load ./vectordb\nCREATE VIRTUAL TABLE items USING vectordb(embedding float[4]);\n"
                                + text + "\nSELECT count(*) FROM items;\n", cwd)
                assert out[-1] == "3" and out[0].startswith("0|[0"), (heading, out)
            else:
                # Relative file names (VACUUM INTO 'copy.db') land in the temporary directory.
                here = os.getcwd()
                os.chdir(cwd)
                try:
                    db = connect(os.path.join(here, EXT) if not os.path.isabs(EXT) else EXT)
                    if heading in FIXTURES:
                        FIXTURES[heading](db)
                    for stmt in statements(text):
                        dims = table_dims(db)
                        params = {"q": vector(dims.get("items", 4), 1)} if ":q" in stmt else {}
                        db.execute(stmt, params).fetchall()
                    db.close()
                finally:
                    os.chdir(here)
        ran += 1
    assert ran >= 6, f"only {ran} SQL examples found"


def test_python_quick_start():
    ran = 0
    for heading, lang, text in blocks():
        if lang == "python" and text.startswith("import") and 'load_extension("./vectordb")' in text:
            proc = subprocess.run([sys.executable, "-c", text.replace("./vectordb", os.path.abspath(EXT))],
                                  capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert proc.returncode == 0, (heading, proc.stderr)
            assert proc.stdout.strip(), f"{heading}: printed nothing"
            ran += 1
    assert ran >= 1, "no runnable Python example found"


run(globals())
