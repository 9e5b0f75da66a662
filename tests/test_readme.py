"""README.md's examples run as printed, so the README cannot drift from what
vectordb does.

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

The ```sh blocks. Each must have, on the last non-blank line before its
fence, a comment saying how it is tested (a block without one fails):

  <!-- readme-test: run [FIXTURE][; OLD => NEW; ...] -->
      The commands run as printed, in order, each in bash with -e and
      pipefail, in a fresh scratch directory that holds a symlink to each of
      the repository's top-level entries (so `build/bin/vectordb`, `src`,
      `./vectordb`, `./bindings/python` work as from the root); a command
      starting with `make` runs in the repository root. Every command must
      exit 0. OLD => NEW substitutions are applied to the block's text
      first (a placeholder such as `PREFIX=...`, or a size: the 1M-row
      import runs on 2,000 rows). Further rules:
      - a variable assignment (`A='...'`) is prefixed to the commands after it;
      - a command ending in `&` is started in the background as its own
        process, killed when the block's fixture ends or this test dies;
      - an optional flag `[--json]` runs the command without and with it;
      - `app.c` is the nearest ```c block above the command; after a `cc`
        command its ./a.out is run, must exit 0, and the claims below are
        about what it prints;
      - claims in a command's comment are checked: `prints "A" and "B"`
        (the output lines; "..." ends a prefix), `prints WORD`, `three
        voters` (dqlite's .cluster), `itself first` (a --row query's first
        row); a command whose comment says "after about" a time is re-run
        until its claim holds, for at most RETRY_DEADLINE seconds.
      FIXTURE (SH_FIXTURES below, each class says what it provides):
        staged        DESTDIR and HOME in the scratch directory; each make
                      install must install every file of the README's table,
                      each make uninstall leave nothing under that prefix
        installed     make install into a scratch prefix, PKG_CONFIG_PATH set
        amalgamation  build/amalgamation/vectordb.[ch] linked in
        cli           the files the CLI synopsis names, `vectordb` on PATH;
                      `[a, b, ...]` vectors filled out to 128 elements; the
                      tables checked against the files afterwards
        cluster       the README's loopback ports 9001-9003 and 8001-8003
                      replaced by ports free at run time, /tmp/vdb by a
                      scratch directory; shared by the consecutive cluster
                      blocks; the HTTP and dqlite replies checked against the
                      rows the /bulk request loads; after the last block the
                      prose's node removal is run and the nodes stopped with
                      SIGTERM (each must exit 0)
  <!-- readme-test: names (reason) -->
      For commands that take minutes (make demo, make bench, the serving
      benchmark) or need a live writer (Litestream): nothing runs, but every
      make target must pass `make -n`, every repository path must exist (a
      build/ path: a make rule must make it), every option given to one of
      the repository's Python scripts (directly or through a make variable
      such as BENCH_ARGS) must be one the script parses, and Litestream's
      options must be in its -h output.
  <!-- readme-test: suite NAME -->
      The suite NAME of make test runs the block itself: its program must
      name the block's section (the python-package suite takes its install
      command from the README).
"""
import atexit
import ctypes
import glob
import json
import math
import os
import re
import shlex
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import connect, run  # noqa: E402

EXT = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fenced():
    """(heading, language, text, directive, line number) for every fenced
    block, in order; directive is the text of a `<!-- readme-test: ... -->`
    comment on the last non-blank line before the fence, or None."""
    heading, out, lang, lines, prev, start = None, [], None, [], "", 0
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if lang is None and line.startswith("#"):
                heading = line.strip("# \n")
            elif lang is None and line.startswith("```"):
                lang, lines, start = line[3:].strip(), [], n
                m = re.match(r"<!--\s*readme-test:(.*?)-->\s*$", prev)
                directive = m.group(1).strip() if m else None
            elif lang is not None and line.startswith("```"):
                out.append((heading, lang, "".join(lines), directive, start))
                lang = None
            elif lang is not None:
                lines.append(line)
            if line.strip():
                prev = line
    return out


def blocks():
    """(heading, language, text) for every fenced block, in order."""
    return [(h, lang, text) for h, lang, text, _, _ in fenced()]


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

# ---- the ```sh blocks ---------------------------------------------------------------
#
# The convention is described at the top of this file. Each block becomes one
# test below (test_sh_LINE), in README order.

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
RETRY_DEADLINE = 15.0     # seconds a command whose comment says "after about ..." may take
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def readme_text():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def parse_directive(directive):
    """(mode, argument, [(old, new), ...]) of `MODE [ARG] [(reason)]; OLD => NEW; ...`."""
    parts = [p.strip() for p in directive.split(";")]
    head = re.sub(r"\(.*\)\s*$", "", parts[0]).split()
    assert head and head[0] in ("run", "names", "suite"), f"unknown readme-test mode in {directive!r}"
    assert head[0] == "run" or len(parts) == 1, f"substitutions are for run blocks only: {directive!r}"
    assert head[0] != "suite" or len(head) == 2, f"suite needs the suite's name: {directive!r}"
    subs = []
    for part in parts[1:]:
        old, sep, new = part.partition(" => ")
        assert sep and old, f"substitution {part!r} is not OLD => NEW"
        subs.append((old, new))
    return head[0], head[1] if len(head) > 1 else None, subs


def sh_commands(text):
    """The commands of a block: continuation lines joined, a here-document
    kept with its command, comment-only and blank lines dropped."""
    out, cur, heredoc = [], "", None
    for line in text.splitlines():
        cur = cur + "\n" + line if cur else line
        if heredoc is not None:
            if line.strip() == heredoc:
                out.append(cur)
                cur, heredoc = "", None
            continue
        if line.endswith("\\"):
            continue
        m = re.search(r"<<-?\s*'?(\w+)'?", split_comment(cur)[0])
        if m:
            heredoc = m.group(1)
            continue
        if cur.strip() and not cur.lstrip().startswith("#"):
            out.append(cur)
        cur = ""
    assert not cur.strip(), f"unterminated command: {cur!r}"
    return out


def split_comment(cmd):
    """(command, comment): the comment is what follows an unquoted # that starts a word."""
    quote, i = None, 0
    while i < len(cmd):
        c = cmd[i]
        if c == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or cmd[i - 1].isspace()):
            return cmd[:i].rstrip(), cmd[i + 1:].strip()
        i += 1
    return cmd.rstrip(), ""


def expand_optional(code):
    """A command with an optional `[--flag]` runs without it and with it."""
    m = re.search(r" \[(--[\w-]+)\]", code)
    if not m:
        return [code]
    return expand_optional(code[:m.start()] + code[m.end():]) + \
        expand_optional(code[:m.start()] + " " + m.group(1) + code[m.end():])


def fill_vectors(code, dim):
    """`[0.1, 0.2, ...]` filled out to dim elements with its last one."""
    def fill(m):
        elems = [e.strip() for e in m.group(1).split(",")]
        return "[" + ", ".join(elems + [elems[-1]] * (dim - len(elems))) + "]"
    return re.sub(r"\[([-\d., ]+?),\s*\.\.\.\]", fill, code)


def claim_problems(comment, code, out):
    """What the output fails of the claims a comment makes (empty: all hold):
    `prints "A" and "B"` (the lines, "..." ending a prefix), `prints WORD`,
    `N voters` (dqlite's .cluster), `itself first` (a --row query)."""
    problems, lines = [], out.splitlines()
    m = re.search(r"\bprints ((?:\"[^\"]*\"(?:,? and |, )?)+)", comment)
    if m:
        want = re.findall(r'"([^"]*)"', m.group(1))
        if len(lines) != len(want) or any(not g.startswith(w.replace("...", "")) or ("..." not in w and g != w)
                                          for g, w in zip(lines, want)):
            problems.append(f"printed {lines!r}, the README says {want!r}")
    else:
        m = re.search(r"\bprints (\w+)", comment)
        if m and out.strip() != m.group(1):
            problems.append(f"printed {out.strip()!r}, the README says {m.group(1)!r}")
    m = re.search(r"\b(\w+) voters\b", comment)
    if m:
        n = sum(1 for line in lines if line.endswith("|voter"))
        if n != NUMBER_WORDS.get(m.group(1), -1):
            problems.append(f"{n} voters, the README says {m.group(1)}: {lines!r}")
    if "itself first" in comment:
        row = re.search(r"--row (\d+)", code)
        first = (json.loads(out)[0]["rowid"] if out.lstrip().startswith("[")
                 else int(lines[1].split()[0]) if len(lines) > 1 else None)
        if not row or first != int(row.group(1)):
            problems.append(f"the first row is {first}, not the queried row: {out!r}")
    return problems


def die_with_parent():
    """In a child: SIGKILL when the test process dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Fixture:
    """A scratch directory holding a link to each of the repository's
    top-level entries; what a block needs beyond that comes from a subclass."""
    dim = None             # the dimension a `[a, b, ...]` vector is filled out to

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vdb-readme-")
        self.dir = self.tmp.name
        for name in os.listdir(ROOT):
            if not name.startswith("."):
                os.symlink(os.path.join(ROOT, name), os.path.join(self.dir, name))
        self.env = dict(CLEAN_ENV)
        self.procs = []    # (command, Popen) of the block's background commands

    def substitute(self, text):
        return text

    def after_command(self, code, out):
        """Checks after one command (its output, or its program's for cc)."""

    def after_block(self, results):
        """Checks after a block, given [(command, output), ...]."""

    def background(self, code, prefix):
        log = open(os.path.join(self.dir, f"background-{len(self.procs)}.log"), "w")
        proc = subprocess.Popen(["bash", "-c", prefix + "exec " + code], cwd=self.dir, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=die_with_parent, start_new_session=True)
        log.close()
        self.procs.append((code, proc))

    def close(self):
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.tmp.cleanup()


class StagedFixture(Fixture):
    """make install / uninstall staged under DESTDIR, with HOME in the scratch
    directory: after each install every file of the README's table is there,
    after uninstall nothing is left under that prefix."""

    def __init__(self):
        super().__init__()
        self.env["DESTDIR"] = os.path.join(self.dir, "stage")
        self.env["HOME"] = os.path.join(self.dir, "home")
        os.mkdir(self.env["HOME"])
        self.installed = []
        self.files = re.findall(r"^\| `\$\(PREFIX\)/([^`]+)` \|", readme_text(), re.M)
        m = re.search(r"removes exactly those (\w+) files", readme_text())
        assert m and len(self.files) == NUMBER_WORDS.get(m.group(1)), (m and m.group(1), self.files)

    def after_command(self, code, out):
        m = re.match(r"make (install|uninstall)\b", code)
        if not m:
            return
        p = re.search(r"PREFIX=(\S+)", code)
        prefix = self.env["DESTDIR"] + (p.group(1).replace("$HOME", self.env["HOME"]) if p else "/usr/local")
        if m.group(1) == "install":
            missing = [f for f in self.files if not os.path.isfile(os.path.join(prefix, f))]
            assert not missing, f"{code}: not installed under {prefix}: {missing}"
            self.installed.append(prefix)
        else:
            assert prefix in self.installed, f"{code}: nothing was installed under {prefix}"
            left = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs]
            assert not left, f"{code}: left behind {left}"


class InstalledFixture(Fixture):
    """vectordb installed into a prefix of the scratch directory, which
    PKG_CONFIG_PATH names (as the README says to for such a prefix)."""

    def __init__(self):
        super().__init__()
        prefix = os.path.join(self.dir, "prefix")
        proc = subprocess.run(["make", "--no-print-directory", "install", "PREFIX=" + prefix], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self.env["PKG_CONFIG_PATH"] = os.path.join(prefix, "lib", "pkgconfig")


class AmalgamationFixture(Fixture):
    """vectordb.c and vectordb.h of build/amalgamation linked into the
    scratch directory (they exist once the block's make has run)."""

    def __init__(self):
        super().__init__()
        for name in ("vectordb.c", "vectordb.h"):
            os.symlink(os.path.join(ROOT, "build", "amalgamation", name), os.path.join(self.dir, name))


class CliFixture(Fixture):
    """The files the command-line synopsis names, `vectordb` on PATH
    (build/bin, what make install installs): embeddings.npy holds 60 x 128
    float32, vectors.fvecs the first 50 of the same rows (so the .npy import
    resumes the table the .fvecs import made), docs.jsonl 5 x 8."""
    dim = 128

    def __init__(self):
        super().__init__()
        import numpy as np
        rng = np.random.default_rng(16)
        self.rows = rng.standard_normal((60, 128)).astype(np.float32)
        np.save(os.path.join(self.dir, "embeddings.npy"), self.rows)
        with open(os.path.join(self.dir, "vectors.fvecs"), "wb") as f:
            for v in self.rows[:50]:
                f.write(struct.pack("<i", 128) + v.astype("<f4").tobytes())
        with open(os.path.join(self.dir, "docs.jsonl"), "w") as f:
            for i in range(5):
                f.write(json.dumps([round(float(x), 3) for x in rng.standard_normal(8)]) + "\n")
        self.env["PATH"] = os.path.join(ROOT, "build", "bin") + os.pathsep + self.env["PATH"]

    def after_block(self, results):
        db = connect(os.path.abspath(EXT), os.path.join(self.dir, "items.db"))
        assert db.execute("SELECT count(*) FROM items").fetchone()[0] == len(self.rows)
        got = db.execute("SELECT embedding FROM items WHERE rowid = ?", (len(self.rows),)).fetchone()[0]
        assert got == self.rows[-1].astype("<f4").tobytes(), "the last imported row is not the file's"
        assert db.execute("SELECT count(*) FROM docs").fetchone()[0] == 5
        db.close()


class ClusterFixture(Fixture):
    """Three vectordb-node processes on loopback: the README's ports
    127.0.0.1:9001-9003 (raft) and 8001-8003 (HTTP) become ports free at run
    time, /tmp/vdb a directory of the scratch one. Each node dies with this
    process. The HTTP replies are checked against the rows the /bulk request
    loads: the search's and the dqlite shell's rowids and distances are the
    exact nearest ones, /sql returns the row's vector, /metrics the row count."""

    def __init__(self):
        super().__init__()
        ports = free_ports(6)
        self.ports = {f"{9 - k // 3}00{k % 3 + 1}": str(p) for k, p in enumerate(ports)}
        self.bulk = None

    def substitute(self, text):
        text = re.sub(r"127\.0\.0\.1:([89]00[123])\b", lambda m: "127.0.0.1:" + self.ports[m.group(1)], text)
        return text.replace("/tmp/vdb", os.path.join(self.dir, "vdb"))

    def exact(self, vector, k, filters=None):
        cols = self.bulk["columns"]
        rows = [dict(zip(cols, r)) for r in self.bulk["rows"]]
        rows = [r for r in rows if all(r[c] == v for c, v in (filters or {}).items())]
        dist = sorted((math.dist(r["embedding"], vector), r["rowid"]) for r in rows)
        return dist[:k]

    def after_command(self, code, out):
        body = re.search(r"-d '(\{.*\})'", code)
        req = json.loads(body.group(1)) if body else None
        if "curl" in code and "/metrics" not in code:
            reply = json.loads(out)
            assert "error" not in reply, f"{code}: {reply}"
        if req and code.rstrip().endswith("/bulk"):
            assert "distance_metric" not in str(self.create), "the checks below compute L2"
            self.bulk = req
            assert reply["rows"] == len(req["rows"]), reply
        elif req and "/sql" in code and "CREATE" in req["sql"]:
            self.create = req["sql"]
        elif req and code.rstrip().endswith("/search"):
            want = self.exact(req["vector"], req["k"], req.get("filters"))
            assert [r[0] for r in reply["rows"]] == [rid for _, rid in want], (reply, want)
            for r, (d, _) in zip(reply["rows"], want):
                assert abs(r[1] - d) < 1e-6, (reply, want)
        elif req and "/sql" in code and "rowid = ?" in req["sql"]:
            rid = req["params"][0]
            row = next(r for r in self.bulk["rows"] if r[self.bulk["columns"].index("rowid")] == rid)
            vec = row[self.bulk["columns"].index("embedding")]
            assert reply["rows"][0][0] == rid and all(abs(a - b) < 1e-6 for a, b in zip(reply["rows"][0][1], vec)), reply
        elif "/health" in code:
            addresses = ["127.0.0.1:" + p for p in self.ports.values()]
            assert reply["role"] in ("leader", "voter") and reply["leader"] in addresses, reply
        elif "/metrics" in code:
            assert f'vectordb_table_rows{{table="items"}} {len(self.bulk["rows"])}' in out, out
        elif code.startswith("dqlite") and "MATCH" in code:
            m = re.search(r"MATCH '(\[[^']*\])' AND k = (\d+)", code)
            want = self.exact(json.loads(m.group(1)), int(m.group(2)))
            got = [line.split("|") for line in out.splitlines()]
            assert [int(r[0]) for r in got] == [rid for _, rid in want], (out, want)
            assert all(abs(float(r[1]) - d) < 1e-6 for r, (d, _) in zip(got, want)), (out, want)

    def node(self, address):
        return next(p for c, p in self.procs if f"-address {address} " in c)

    def stop(self, proc):
        """SIGTERM, which the README says stops a node cleanly: exit 0."""
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=RETRY_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError("a node did not stop within %.0f s of SIGTERM" % RETRY_DEADLINE)
        assert rc == 0, f"a node exited with {rc} after SIGTERM"

    def remove_and_stop(self):
        """The prose's node removal (stop it, then dqlite ... ".remove ..."),
        then the other nodes stopped with SIGTERM."""
        m = re.search(r'stop it, then `(dqlite -s (\S+) (\w+) "\.remove ([\d.:]+)")`', readme_text())
        assert m, "the README's node removal command is not where it was"
        cmd, seed, db, gone = (self.substitute(g) for g in m.groups())
        assert all(proc.poll() is None for _, proc in self.procs), "a node exited on its own"
        self.stop(self.node(gone))
        proc = subprocess.run(["bash", "-c", cmd], env=self.env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and not proc.stderr, (cmd, proc.stdout, proc.stderr)
        out = subprocess.run(["dqlite", "-s", seed, db, ".cluster"], capture_output=True, text=True,
                             timeout=60).stdout
        assert len(out.splitlines()) == 2 and gone not in out, out
        for c, p in self.procs:
            if p.poll() is None:
                self.stop(p)


SH_FIXTURES = {None: Fixture, "staged": StagedFixture, "installed": InstalledFixture,
            "amalgamation": AmalgamationFixture, "cli": CliFixture, "cluster": ClusterFixture}
LIVE = {}     # fixture name -> the instance its consecutive blocks share


def c_block_before(line_no):
    """The nearest ```c block above a README line."""
    cs = [t for _, lang, t, _, n in fenced() if lang == "c" and n < line_no]
    assert cs, f"README.md:{line_no}: app.c, but no ```c block above"
    return cs[-1]


def sh(script, cwd, env, timeout=600):
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_sh_block(fx, heading, text, subs, line_no):
    for old, new in subs:
        assert old in text, f"README.md:{line_no}: the substitution {old!r} matches nothing"
        text = text.replace(old, new)
    text = fx.substitute(text)
    if "app.c" in text:
        with open(os.path.join(fx.dir, "app.c"), "w") as f:
            f.write(c_block_before(line_no))
    assigns, results = [], []
    for cmd in sh_commands(text):
        for line in expand_optional(cmd):
            code, comment = split_comment(line)
            if fx.dim:
                code = fill_vectors(code, fx.dim)
            where = f"README.md:{line_no} ({heading}): {code.splitlines()[0]}"
            words = shlex.split(code)
            if len(words) == 1 and re.match(r"[A-Za-z_]\w*=", words[0]):
                assigns.append(code)
                continue
            prefix = "".join(a + "\n" for a in assigns)
            if re.search(r"[^&]&$", code):
                fx.background(code[:-1].strip(), prefix)
                continue
            cwd = ROOT if words[0] == "make" else fx.dir
            end = time.monotonic() + RETRY_DEADLINE
            while True:
                proc = sh(prefix + code, cwd, fx.env)
                out = proc.stdout
                assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
                if words[0] == "cc":
                    run_ = subprocess.run(["./a.out"], cwd=fx.dir, capture_output=True, text=True, timeout=60)
                    assert run_.returncode == 0, f"{where}: ./a.out exit {run_.returncode}: {run_.stderr}"
                    out = run_.stdout
                    os.unlink(os.path.join(fx.dir, "a.out"))
                problems = claim_problems(comment, code, out)
                if not problems or "after about" not in comment or time.monotonic() > end:
                    break
                time.sleep(0.1)
            assert not problems, f"{where}: " + "; ".join(problems)
            try:
                fx.after_command(code, out)
            except AssertionError as e:
                raise AssertionError(f"{where}: {e}") from None
            results.append((code, out))
    try:
        fx.after_block(results)
    except AssertionError as e:
        raise AssertionError(f"README.md:{line_no} ({heading}): {e}") from None
    return len(results)


def simple_commands(code):
    """The word lists of a command line's simple commands (redirections and
    here-document bodies left out)."""
    lex = shlex.shlex(code.split("\n")[0] if "<<" in code else code.replace("\\\n", " "),
                      posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    cmds, cur, skip = [], [], False
    for tok in lex:
        if skip:
            skip = False
        elif tok in ("&&", "||", ";", "|", "&"):
            cmds.append(cur)
            cur = []
        elif tok in (">", ">>", "<", "<<"):
            skip = True
        else:
            cur.append(tok)
    return [c for c in cmds + [cur] if c]


def script_has_option(script, opt):
    with open(os.path.join(ROOT, script), encoding="utf-8") as f:
        src = f.read()
    return any(q + opt + e in src for q in "\"'" for e in (q, "="))


def names_problems(code):
    """What a long-running command names that does not exist: make targets
    (`make -n` must succeed), repository paths (files, or build outputs a
    make rule makes), options of the repository's Python scripts (also those
    passed through a make variable), Litestream's options."""
    problems = []
    top = {n for n in os.listdir(ROOT) if not n.startswith(".")}
    for words in simple_commands(code):
        if words[0] == "make":
            proc = subprocess.run(["make", "-n", "--no-print-directory"] + words[1:], cwd=ROOT, env=CLEAN_ENV,
                                  capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                problems.append(f"make -n {' '.join(words[1:])}: {proc.stderr.strip()}")
            for opt in re.findall(r"(--[\w-]+)", " ".join(w for w in words[1:] if "=" in w)):
                scripts = {t for ln in proc.stdout.splitlines() if opt in ln.split()
                           for t in ln.split() if t.endswith(".py") and os.path.isfile(os.path.join(ROOT, t))}
                if not scripts or not all(script_has_option(s, opt) for s in scripts):
                    problems.append(f"{opt}: no script that make runs takes it ({sorted(scripts)})")
        script = None
        for w in words:
            path = w[2:] if w.startswith("./") else w
            if "/" in path and path.split("/")[0] in top:
                if path.startswith("build/"):
                    proc = subprocess.run(["make", "-n", path], cwd=ROOT, env=CLEAN_ENV, capture_output=True,
                                          text=True, timeout=120)
                    if proc.returncode != 0:
                        problems.append(f"{path}: no make rule builds it")
                elif not os.path.exists(os.path.join(ROOT, path)):
                    problems.append(f"{path}: no such file")
                elif path.endswith(".py"):
                    script = path
            elif script and w.startswith("--") and not script_has_option(script, w.split("=")[0]):
                problems.append(f"{script} takes no option {w}")
        if words[0] == "litestream":
            found = glob.glob(os.path.join(ROOT, ".cache", "litestream-*", "litestream"))
            if not found:
                problems.append("no litestream binary in .cache (make test fetches it)")
                continue
            usage = subprocess.run([found[0], words[1], "-h"], capture_output=True, text=True, timeout=60)
            listed = set(re.findall(r"^\s+(-[\w-]+)", usage.stdout + usage.stderr, re.M))
            problems += [f"litestream {words[1]} has no option {w}" for w in words[2:]
                         if re.match(r"-[a-z]", w) and w not in listed]
    return problems


def suite_problems(name, heading):
    """The suite must be run by make test and its program must take the
    block from the README (it names the block's section)."""
    for frag in glob.glob(os.path.join(ROOT, "tests", "suites", "*.sh")):
        with open(frag, encoding="utf-8") as f:
            m = re.search(rf"^run_suite\s+{re.escape(name)}\s+(.*)$", f.read(), re.M)
        if m:
            files = [w for w in m.group(1).split() if os.path.isfile(os.path.join(ROOT, w))]
            for path in files:
                with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                    if heading in f.read():
                        return []
            return [f"suite {name} ({files}) does not take the README's section {heading!r}"]
    return [f"no suite {name} in tests/suites"]


def test_every_sh_block_has_a_directive():
    """A new ```sh block must say how it is tested (see the top of this file)."""
    found = 0
    for heading, lang, _, directive, n in fenced():
        if lang == "sh":
            assert directive, f"README.md:{n} ({heading}): a ```sh block without <!-- readme-test: ... -->"
            mode, arg, _ = parse_directive(directive)
            assert mode != "run" or arg in SH_FIXTURES, f"README.md:{n}: unknown fixture {arg!r}"
            found += 1
    assert found >= 10, f"only {found} sh blocks"


def sh_test(heading, text, directive, n, last_of_group):
    def test():
        mode, arg, subs = parse_directive(directive)
        start = time.monotonic()
        if mode == "names":
            problems = [p for cmd in sh_commands(text) for p in names_problems(split_comment(cmd)[0])]
            assert not problems, f"README.md:{n} ({heading}): " + "; ".join(problems)
            what = "names checked"
        elif mode == "suite":
            problems = suite_problems(arg, heading)
            assert not problems, f"README.md:{n} ({heading}): " + "; ".join(problems)
            what = f"run by suite {arg}"
        else:
            fx = LIVE.get(arg) or SH_FIXTURES[arg]()
            if arg is not None:
                LIVE[arg] = fx
            try:
                what = f"{run_sh_block(fx, heading, text, subs, n)} commands run"
                if last_of_group and isinstance(fx, ClusterFixture):
                    fx.remove_and_stop()
                    what += ", a node removed, the others stopped"
            finally:
                if last_of_group or arg is None:
                    LIVE.pop(arg, None)
                    fx.close()
        print(f"ok   README.md:{n} ({heading}): {what} in {time.monotonic() - start:.1f} s")
    return test


def add_sh_tests():
    sh_blocks = [b for b in fenced() if b[1] == "sh" and b[3]]
    for i, (heading, _, text, directive, n) in enumerate(sh_blocks):
        mode, arg, _ = parse_directive(directive)
        nxt = parse_directive(sh_blocks[i + 1][3])[1] if i + 1 < len(sh_blocks) else None
        globals()[f"test_sh_{n}"] = sh_test(heading, text, directive, n, nxt != arg)


@atexit.register
def close_fixtures():
    for fx in LIVE.values():
        fx.close()


add_sh_tests()


run(globals())
