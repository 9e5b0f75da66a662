"""Crash recovery: a random workload on an HNSW-indexed table runs in a child
process that is killed with SIGKILL at random moments; after each kill the
database is reopened and checked, then the workload continues on the same
file, so crashes accumulate.

usage: /usr/bin/python3 tests/test_crash.py EXTENSION_PATH [CRASHES_PER_MODE] [SEED]

Both journal modes (WAL and DELETE) are exercised, CRASHES_PER_MODE kills
each (default 12). Ends with "N passed, N failed": one check per crash.

The child reports on its stdout pipe, one line per event:
  ready                        connected, about to start
  begin N                      explicit transaction N started
  op N I                       operation I of transaction N done
  commit N explicit|auto JSON  about to commit transaction N (JSON: its effects)
  committed N                  transaction N committed
  rolledback N                 transaction N rolled back on purpose
The parent kills it after reading a random number of lines (sometimes right
after a "commit" line, so the kill lands inside COMMIT), then reads what is
left in the pipe. At most one transaction is in doubt: one whose "commit"
line has no "committed" line. For an explicit transaction the ledger table,
written in the same transaction, decides; for an autocommit statement (a
single statement, so it can carry no ledger row) the table must equal
exactly the state without it or the state with it.

After each kill:
  - PRAGMA integrity_check is ok and vectordb_check('t') is ok;
  - the ledger holds exactly the committed explicit transactions, each with
    the effects the child reported;
  - the table's rows equal the replay of every committed transaction's
    effects: same rowids, byte-identical vectors, same genres;
  - exact KNN (ef_search = 0), with and without a filter, agrees with numpy;
  - HNSW recall@10 (ef_search 32, 300 queries drawn like the rows) is no
    more than 0.01 below that of a fresh build of the same rows with the
    same parameters (the lower of two builds, in rowid order and shuffled);
  - a connection kept open across all the crashes (its graph cache filled
    by the previous cycle's queries) gives the same HNSW answers as a new
    connection, at the table's stored default ef_search, which the workload
    changes now and then, and also after it rolled back a change of that
    default itself; half the time it is the first to read after the kill,
    and so is the one that recovers the database.
"""
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import connect  # noqa: E402

DIM = 16                            # per journal mode: set before use
HNSW = "INDEXED BY hnsw(m=8, ef_construction=64)"


def decl():
    return f"e float[{DIM}] {HNSW}, genre text"


GENRES = ["a", "b", "c", None]
LOW_ROWS, HIGH_ROWS = 300, 1500     # the workload keeps the table in this band
RECALL_QUERIES, RECALL_EF = 300, 32   # the recall-versus-fresh-build check
MAX_CHILD_LINES = 200000            # a child never killed stops here (a parent bug)


def vec(seed):
    """The float32 vector a seed names; parent and child agree on it. Up to
    16 dimensions, Gaussian; above, 16 Gaussian coordinates repeated, plus
    noise, so that recall at the default ef_search is high and a fresh
    build's recall is a stable yardstick."""
    r = random.Random(seed)
    z = [r.gauss(0.0, 1.0) for _ in range(min(DIM, 16))]
    if DIM <= 16:
        return struct.pack("<%df" % DIM, *z)
    return struct.pack("<%df" % DIM, *[z[i % 16] + 0.3 * r.gauss(0.0, 1.0) for i in range(DIM)])


# ---- the child: the workload -------------------------------------------------

class Child:
    def __init__(self, ext, path, seed, next_tx, rollback_to=True):
        self.rng = random.Random(seed)
        self.rollback_to = rollback_to
        self.db = connect(ext, path)
        self.db.execute("PRAGMA synchronous=%s" % self.rng.choice(["OFF", "NORMAL", "FULL"]))
        # Sometimes a tiny page cache: transactions spill pages into the
        # database file (or WAL) before they commit.
        if self.rng.random() < 0.3:
            self.db.execute("PRAGMA cache_size=20")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.execute("CREATE TEMP TABLE staging(rowid INTEGER PRIMARY KEY, e BLOB, genre TEXT)")
        self.rows = dict(self.db.execute("SELECT rowid, genre FROM t"))
        self.tx = next_tx
        self.nseed = 0
        self.lines = 0

    def say(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        self.lines += 1
        if self.lines > MAX_CHILD_LINES:
            sys.exit(3)

    def seed(self):
        self.nseed += 1
        return self.tx * 100000 + self.nseed

    def genre(self):
        return self.rng.choice(GENRES)

    def free_rowid(self, taken=()):
        """A rowid not in use (nor in taken): often a gap, sometimes new."""
        top = max(max(self.rows, default=0), max(taken, default=0))
        while True:
            r = self.rng.randint(1, top + 20)
            if r not in self.rows and r not in taken:
                return r

    def some_rowid(self):
        return self.rng.choice(list(self.rows))

    def pick_op(self):
        n = len(self.rows)
        if n == 0:
            return self.rng.choice(["insert", "insert_auto", "bulk_select"])
        ops = ["insert", "insert_auto", "replace", "update_vec", "update_genre",
               "update_rowid", "delete", "delete_range", "update_range", "bulk_select"]
        if n < LOW_ROWS:
            weights = [8, 2, 1, 1, 1, 0, 0, 0, 0, 3]
        elif n > HIGH_ROWS:
            weights = [1, 0, 1, 2, 1, 1, 6, 3, 1, 0]
        else:
            weights = [6, 2, 2, 4, 2, 1, 4, 2, 1, 0.5]
        return self.rng.choices(ops, weights)[0]

    def plan(self, kind):
        """One change to the main database as a single statement, plus the
        TEMP staging rows it reads: (statements, effects). Each statement is
        (sql, params, many, expected lastrowid or None)."""
        if kind == "insert":
            r, s, g = self.free_rowid(), self.seed(), self.genre()
            return [("INSERT INTO t(rowid, e, genre) VALUES (?, ?, ?)", (r, vec(s), g), False, None)], \
                [["put", r, s, g]]
        if kind == "insert_auto":
            r = (max(self.rows) if self.rows else 0) + 1
            s, g = self.seed(), self.genre()
            return [("INSERT INTO t(e, genre) VALUES (?, ?)", (vec(s), g), False, r)], [["put", r, s, g]]
        if kind == "replace":
            r = self.some_rowid() if self.rng.random() < 0.7 else self.free_rowid()
            s, g = self.seed(), self.genre()
            return [("INSERT OR REPLACE INTO t(rowid, e, genre) VALUES (?, ?, ?)", (r, vec(s), g), False, None)], \
                [["put", r, s, g]]
        if kind == "update_vec":
            r, s = self.some_rowid(), self.seed()
            return [("UPDATE t SET e = ? WHERE rowid = ?", (vec(s), r), False, None)], [["vec", r, s]]
        if kind == "update_genre":
            r, g = self.some_rowid(), self.genre()
            return [("UPDATE t SET genre = ? WHERE rowid = ?", (g, r), False, None)], [["genre", r, g]]
        if kind == "update_rowid":
            old, new = self.some_rowid(), self.free_rowid()
            return [("UPDATE t SET rowid = ? WHERE rowid = ?", (new, old), False, None)], [["move", old, new]]
        if kind == "delete":
            r = self.some_rowid()
            return [("DELETE FROM t WHERE rowid = ?", (r,), False, None)], [["del", r]]
        if kind == "delete_range":
            present = sorted(self.rows)
            i = self.rng.randrange(len(present))
            lo, hi = present[i], present[min(i + self.rng.randint(1, 60), len(present) - 1)]
            return [("DELETE FROM t WHERE rowid BETWEEN ? AND ?", (lo, hi), False, None)], \
                [["del", r] for r in sorted(self.rows) if lo <= r <= hi]
        if kind == "update_range":
            # New vectors for every row in a rowid range, in one UPDATE that
            # reads them from the staging table.
            present = sorted(self.rows)
            i = self.rng.randrange(len(present))
            lo, hi = present[i], present[min(i + self.rng.randint(1, 30), len(present) - 1)]
            eff = [["vec", r, self.seed()] for r in sorted(self.rows) if lo <= r <= hi]
            return [("DELETE FROM temp.staging", (), False, None),
                    ("INSERT INTO temp.staging(rowid, e) VALUES (?, ?)", [(e[1], vec(e[2])) for e in eff], True, None),
                    ("UPDATE t SET e = (SELECT s.e FROM temp.staging s WHERE s.rowid = t.rowid)"
                     " WHERE rowid BETWEEN ? AND ?", (lo, hi), False, None)], eff
        if kind == "bulk_select":
            # INSERT ... SELECT of many new rows: one statement, one atomic
            # change to the main database.
            n = self.rng.randint(20, 200)
            base = (max(self.rows) if self.rows else 0) + self.rng.randint(1, 5)
            eff = [["put", base + i, self.seed(), self.genre()] for i in range(n)]
            return [("DELETE FROM temp.staging", (), False, None),
                    ("INSERT INTO temp.staging VALUES (?, ?, ?)", [(e[1], vec(e[2]), e[3]) for e in eff], True, None),
                    ("INSERT INTO t(rowid, e, genre) SELECT rowid, e, genre FROM temp.staging", (), False, None)], eff
        if kind == "executemany":
            # Many inserts through one executemany: only inside a transaction,
            # since each execution would otherwise commit on its own.
            taken = set()
            eff = []
            for _ in range(self.rng.randint(10, 100)):
                r = self.free_rowid(taken)
                taken.add(r)
                eff.append(["put", r, self.seed(), self.genre()])
            return [("INSERT INTO t(rowid, e, genre) VALUES (?, ?, ?)",
                     [(e[1], vec(e[2]), e[3]) for e in eff], True, None)], eff
        raise AssertionError(kind)

    def execute(self, steps, eff):
        for sql, params, many, want_rowid in steps:
            if many:
                self.db.executemany(sql, params)
            else:
                cur = self.db.execute(sql, params)
                if want_rowid is not None and cur.lastrowid != want_rowid:
                    raise AssertionError(f"automatic rowid {cur.lastrowid}, expected {want_rowid}")
        for e in eff:
            apply_effect(self.rows, e, genres_only=True)
        return eff

    def op(self, kind):
        return self.execute(*self.plan(kind))

    def explicit_tx(self):
        tx = self.tx
        self.say(f"begin {tx}")
        self.db.execute(self.rng.choice(["BEGIN", "BEGIN IMMEDIATE"]))
        before = dict(self.rows)
        effects = []
        for i in range(self.rng.randint(1, 8)):
            r = self.rng.random()
            if r < 0.1 and self.rollback_to:
                # A savepoint rolled back leaves nothing.
                saved = dict(self.rows)
                self.db.execute("SAVEPOINT sp")
                for _ in range(self.rng.randint(1, 3)):
                    self.op(self.pick_op())
                self.db.execute("ROLLBACK TO sp")
                self.db.execute("RELEASE sp")
                self.rows = saved
            elif r < 0.2:
                self.db.execute("SAVEPOINT sp")
                effects += self.op(self.pick_op())
                self.db.execute("RELEASE sp")
            elif r < 0.3 and len(self.rows) < HIGH_ROWS:
                effects += self.op("executemany")
            elif r < 0.33:
                effects += self.execute(*self.setting())
            else:
                effects += self.op(self.pick_op())
            self.say(f"op {tx} {i}")
        if self.rng.random() < 0.08:
            self.db.execute("ROLLBACK")
            self.rows = before
            self.say(f"rolledback {tx}")
            return
        text = json.dumps(effects, separators=(",", ":"))
        self.db.execute("INSERT INTO ledger(tx, effects) VALUES (?, ?)", (tx, text))
        self.say(f"commit {tx} explicit {text}")
        self.db.execute("COMMIT")
        self.say(f"committed {tx}")

    def setting(self):
        """A new stored default ef_search: no rows change, but every
        connection must follow it (the observer checks)."""
        n = self.rng.choice([32, 48, 64])
        return [(f"INSERT INTO t(t) VALUES ('ef_search={n}')", (), False, None)], []

    def autocommit_tx(self):
        r = self.rng.random()
        if r < 0.03:
            # VACUUM rewrites every page and changes nothing: killed or not,
            # the rows stay as they are.
            steps, eff = [("VACUUM", (), False, None)], []
        elif r < 0.06:
            steps, eff = self.setting()
        else:
            steps, eff = self.plan(self.pick_op())
        self.say(f"commit {self.tx} auto " + json.dumps(eff, separators=(",", ":")))
        self.execute(steps, eff)
        self.say(f"committed {self.tx}")

    def run(self):
        self.say("ready")
        while True:
            if self.rng.random() < 0.6:
                self.explicit_tx()
            else:
                self.autocommit_tx()
            self.tx += 1
            self.nseed = 0


def child_main(argv):
    global DIM
    ext, path, seed, next_tx, DIM = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    try:
        Child(ext, path, seed, next_tx, rollback_to=argv[5] == "1").run()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)


# ---- the parent: kill, reopen, check ----------------------------------------

def apply_effect(rows, e, genres_only=False):
    """Apply one effect to a model: rowid -> (seed, genre), or, for the
    child's view, rowid -> genre."""
    kind = e[0]
    if kind == "put":
        rows[e[1]] = e[3] if genres_only else (e[2], e[3])
    elif kind == "del":
        rows.pop(e[1], None)
    elif kind == "vec":
        if not genres_only:
            rows[e[1]] = (e[2], rows[e[1]][1])
    elif kind == "genre":
        rows[e[1]] = e[2] if genres_only else (rows[e[1]][0], e[2])
    elif kind == "move":
        rows[e[2]] = rows.pop(e[1])
    else:
        raise AssertionError(e)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Mode:
    """One database file under one journal mode, crashed again and again."""

    def __init__(self, ext, tmp, journal, rng, rollback_to=True):
        import numpy as np
        self.rollback_to = rollback_to
        self.np = np
        self.ext = ext
        self.journal = journal
        self.rng = rng
        self.path = os.path.join(tmp, f"crash-{journal.lower()}.db")
        self.model = {}                 # rowid -> (seed, genre)
        self.ledger = {}                # committed explicit tx -> effects text
        self.next_tx = 1
        self.vcache = {}
        self.stats = {"in_doubt": 0, "in_doubt_committed": 0, "kills_in_commit": 0, "txs": 0,
                      "child_s": 0.0, "check_s": 0.0,
                      "worst_gap": -1.0}
        db = connect(ext, self.path)
        mode = db.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
        check(mode.upper() == journal, f"journal_mode is {mode}")
        db.execute(f"CREATE VIRTUAL TABLE t USING vectordb({decl()})")
        db.execute("CREATE TABLE ledger(tx INTEGER PRIMARY KEY, effects TEXT NOT NULL)")
        # WAL mode: 128 dimensions and a 1 MiB graph cache (about 1,000
        # nodes), so that large transactions flush and evict inside the
        # transaction, not only at commit.
        if journal == "WAL":
            db.execute("INSERT INTO t(t) VALUES ('cache_mb=1')")
        db.close()
        self.observer = connect(ext, self.path)

    def v(self, seed):
        b = self.vcache.get(seed)
        if b is None:
            b = self.vcache[seed] = vec(seed)
        return b

    def crash_once(self):
        """Run a child, kill it, and return the lines it wrote."""
        seed = self.rng.randrange(1 << 30)
        errf = tempfile.TemporaryFile()
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child",
                                 self.ext, self.path, str(seed), str(self.next_tx), str(DIM),
                                 "1" if self.rollback_to else "0"],
                                stdout=subprocess.PIPE, stderr=errf, text=True, bufsize=1)
        lines = []
        target = self.rng.randint(1, 250)
        in_commit = self.rng.random() < 0.4
        killed = False
        while True:
            line = proc.stdout.readline()
            if not line.endswith("\n"):
                break
            lines.append(line.rstrip("\n"))
            if lines[0] != "ready":
                break
            if len(lines) > target and (not in_commit or line.startswith("commit ")):
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
        # What the child wrote before it died. A last line without its
        # newline was cut by the kill and is dropped: a "commit" line is
        # written before its COMMIT runs, and without its "committed" line a
        # transaction is simply in doubt, which the checks decide.
        rest = proc.stdout.read().split("\n")
        lines += [x for x in rest[:-1] if x]
        proc.stdout.close()
        status = proc.wait()
        errf.seek(0)
        err = errf.read().decode(errors="replace")
        errf.close()
        check(killed and status == -signal.SIGKILL,
              f"child (seed {seed}) ended on its own with status {status}; lines {lines[-3:]}; stderr:\n{err}")
        if in_commit:
            self.stats["kills_in_commit"] += 1
        return lines

    def table_state(self, db):
        return {r: (e, g) for r, e, g in db.execute("SELECT rowid, e, genre FROM t")}

    def expected_state(self, model):
        return {r: (self.v(s), g) for r, (s, g) in model.items()}

    def digest_diff(self, got, want):
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        differ = sorted(r for r in set(got) & set(want) if got[r] != want[r])[:5]
        return f"{len(got)} rows, expected {len(want)}; missing {missing} extra {extra} differing {differ}"

    def replay(self, lines, db):
        """Fold the child's report into the model; settle the one in doubt."""
        pending = None                  # (tx, kind, effects) with "commit" but no "committed"
        begun = None
        for line in lines[1:]:
            parts = line.split(" ", 3)
            tag, tx = parts[0], int(parts[1])
            self.next_tx = max(self.next_tx, tx + 1)
            if tag == "begin":
                begun = tx
            elif tag == "commit":
                if pending is not None:
                    raise Failure(f"two transactions in doubt: {pending[0]} and {tx}")
                pending = (tx, parts[2], json.loads(parts[3]), parts[3])
            elif tag == "committed":
                check(pending is not None and pending[0] == tx, f"committed {tx} without commit")
                self.commit(pending)
                pending = None
            elif tag == "rolledback":
                check(begun == tx, f"rolledback {tx} without begin")
            elif tag != "op":
                raise Failure(f"child line {line!r}")
        if pending is not None:
            self.stats["in_doubt"] += 1
            tx, kind = pending[0], pending[1]
            if kind == "explicit":
                present = db.execute("SELECT count(*) FROM ledger WHERE tx = ?", (tx,)).fetchone()[0]
            else:
                got = self.table_state(db)
                with_it = dict(self.model)
                for e in pending[2]:
                    apply_effect(with_it, e)
                want_without, want_with = self.expected_state(self.model), self.expected_state(with_it)
                present = got == want_with
                check(present or got == want_without,
                      f"autocommit tx {tx} in doubt: the table matches neither outcome: "
                      + self.digest_diff(got, want_without))
            if present:
                self.stats["in_doubt_committed"] += 1
                self.commit(pending)

    def commit(self, pending):
        tx, kind, effects, text = pending
        for e in effects:
            apply_effect(self.model, e)
        if kind == "explicit":
            self.ledger[tx] = text
        self.stats["txs"] += 1

    def verify(self, db):
        np = self.np
        check(db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], "PRAGMA integrity_check")
        res = db.execute("SELECT vectordb_check('t')").fetchone()[0]
        check(res == "ok", f"vectordb_check: {res}")
        ledger = dict(db.execute("SELECT tx, effects FROM ledger"))
        if ledger != self.ledger:
            lost = sorted(set(self.ledger) - set(ledger))[:5]
            extra = sorted(set(ledger) - set(self.ledger))[:5]
            differ = sorted(t for t in set(ledger) & set(self.ledger) if ledger[t] != self.ledger[t])[:5]
            raise Failure(f"ledger: lost committed {lost}, has uncommitted {extra}, differs {differ}")
        got, want = self.table_state(db), self.expected_state(self.model)
        check(got == want, "rows: " + self.digest_diff(got, want))
        if not self.model:
            return
        ids = np.array(sorted(self.model), dtype=np.int64)
        mat = np.frombuffer(b"".join(want[r][0] for r in ids), dtype="<f4").reshape(len(ids), DIM)
        genres = [want[r][1] for r in ids]
        qrng = np.random.default_rng(self.rng.randrange(1 << 30))
        queries = qrng.standard_normal((300, DIM)).astype(np.float32)
        m64, q64 = mat.astype(np.float64), queries.astype(np.float64)
        d_all = np.sqrt(np.maximum((q64 ** 2).sum(axis=1)[:, None] + (m64 ** 2).sum(axis=1)[None, :]
                                   - 2.0 * q64 @ m64.T, 0.0))
        # Exact KNN against numpy, with and without a filter.
        for qi in range(8):
            q = queries[qi]
            for flt, params, mask in (("", (), np.ones(len(ids), bool)),
                                      ("AND genre = ?", ("b",), np.array([g == "b" for g in genres]))):
                res = db.execute(f"SELECT rowid, distance FROM t WHERE e MATCH ? AND k = 10 "
                                 f"AND ef_search = 0 {flt}", (q.tobytes(),) + params).fetchall()
                d = d_all[qi]
                cand = np.flatnonzero(mask)
                top = np.sort(d[cand])[:10]
                check(len(res) == len(top), f"exact KNN {flt}: {len(res)} rows, expected {len(top)}")
                pos = {int(r): i for i, r in enumerate(ids)}
                for (rid, dist), want_d in zip(res, top):
                    check(rid in pos and mask[pos[rid]], f"exact KNN {flt}: row {rid} should not match")
                    check(abs(dist - d[pos[rid]]) <= 1e-4 * max(1.0, d[pos[rid]]),
                          f"exact KNN: row {rid} distance {dist} vs {d[pos[rid]]}")
                    check(abs(dist - want_d) <= 1e-4 * max(1.0, want_d),
                          f"exact KNN {flt}: distances {[x for _, x in res]} vs {list(top)}")
        # HNSW recall against fresh builds of the same rows, on queries drawn
        # like the rows (vec() of seeds no row uses). Not the Gaussian queries
        # above: at 128 dimensions those lie off the rows' 16-dimensional
        # pattern, and their nearest rows are a handful of extreme "hub" rows
        # (one row was in the top 10 of a third of them). Recall on them
        # measures whether those few rows happened to get links towards each
        # other, and fresh builds of the same rows in different orders
        # differed by 0.03 at ef_search 32 (measured, 1,000 queries), so no
        # bound of 0.01 could be kept on them whatever the repair does.
        # Drawn like the rows, fresh builds agree within 0.005, and a graph
        # that churn has damaged shows up. ef_search 32, not the default 64,
        # so recall is below 0.99 and a loss can show. The yardstick is the
        # lower of two fresh builds: rowid order and a shuffled order.
        rq = np.stack([np.frombuffer(vec(f"recall-query-{qrng.integers(1 << 40)}"), dtype="<f4")
                       for _ in range(RECALL_QUERIES)])
        r64 = rq.astype(np.float64)
        d_rq = (r64 ** 2).sum(axis=1)[:, None] + (m64 ** 2).sum(axis=1)[None, :] - 2.0 * r64 @ m64.T
        exact = [set(ids[np.argsort(d_rq[qi], kind="stable")[:10]].tolist()) for qi in range(len(rq))]

        def recall(conn):
            found = 0
            for qi, q in enumerate(rq):
                res = conn.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = 10 AND ef_search = ?",
                                   (q.tobytes(), RECALL_EF)).fetchall()
                found += len(exact[qi] & {r for r, in res})
            return found / sum(len(x) for x in exact)

        def fresh_recall(order):
            fresh = connect(self.ext)
            fresh.execute(f"CREATE VIRTUAL TABLE t USING vectordb({decl()})")
            fresh.execute("BEGIN")
            fresh.executemany("INSERT INTO t(rowid, e, genre) VALUES (?, ?, ?)",
                              ((int(r), want[r][0], want[r][1]) for r in order))
            fresh.execute("COMMIT")
            r = recall(fresh)
            fresh.close()
            return r
        shuffled = ids.copy()
        qrng.shuffle(shuffled)
        r_crash = recall(db)
        r_fresh = min(fresh_recall(ids), fresh_recall(shuffled))
        self.last_recall = (r_crash, r_fresh)
        self.stats["worst_gap"] = max(self.stats["worst_gap"], r_fresh - r_crash)
        check(r_crash >= r_fresh - 0.01, f"recall@10 {r_crash:.4f} vs fresh build {r_fresh:.4f}")
        # The long-lived connection answers exactly as this new one does.
        check(self.observed(db) == self.observer_answers, "the long-lived connection's HNSW answers "
              "differ from a new connection's: its graph cache or settings are stale")

    def observed(self, conn):
        """HNSW answers to the observer's queries on conn."""
        return [conn.execute("SELECT rowid, distance FROM t WHERE e MATCH ? AND k = 10",
                             (q.tobytes(),)).fetchall() for q in self.observer_queries]

    def cycle(self):
        t0 = time.time()
        lines = self.crash_once()
        t1 = time.time()
        # A connection that stays open across the crashes, its graph cache
        # filled by its queries of the last cycle, must notice what the
        # child committed. Half the time it is the first to read after the
        # crash, and so recovers the database (hot journal or WAL).
        qrng = self.np.random.default_rng(self.rng.randrange(1 << 30))
        self.observer_queries = qrng.standard_normal((10, DIM)).astype(self.np.float32)
        observer_first = self.rng.random() < 0.5
        if self.rng.random() < 0.25:
            # A setting changed and rolled back must not stay in effect.
            self.observer.execute("BEGIN")
            self.observer.execute("INSERT INTO t(t) VALUES ('ef_search=1')")
            self.observer.execute("ROLLBACK")
        if observer_first:
            self.observer_answers = self.observed(self.observer)
        db = connect(self.ext, self.path)
        try:
            self.replay(lines, db)
            if not observer_first:
                self.observer_answers = self.observed(self.observer)
            self.verify(db)
        finally:
            db.close()
        self.stats["child_s"] += t1 - t0
        self.stats["check_s"] += time.time() - t1
        return lines


def sqlite_loses_wal_savepoint_rollbacks():
    """Whether this SQLite loses a committed WAL transaction in crash
    recovery after the transaction rolled back to a savepoint once its
    pages had spilled into the WAL and one spilled page was written again.
    Plain SQLite, no vectordb: the overwrite defers the frame checksums to
    COMMIT, the rollback rewinds the WAL below the first deferred frame
    without resetting that mark, so the frames written after it keep zero
    checksums and recovery stops at them. Measured: 3.40.1 (Debian 12's)
    has it; 3.53.2 resets the mark in sqlite3WalSavepointUndo and keeps the
    transaction. A crash here is a copy of the database and its WAL without
    the -shm file, which makes the next reader recover from the WAL."""
    d = tempfile.mkdtemp(prefix="vectordb-walprobe-")
    try:
        path = os.path.join(d, "a.db")
        c = sqlite3.connect(path, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA cache_size=10")
        c.execute("CREATE TABLE u(id INTEGER PRIMARY KEY, b BLOB)")
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
        c.execute("BEGIN")
        c.execute("SAVEPOINT sp")
        for k in range(20):
            c.execute("INSERT INTO u VALUES (?, randomblob(3000))", (k,))
        for _ in range(3):
            for k in range(40):
                c.execute("INSERT OR REPLACE INTO t VALUES (?, randomblob(3000))", (k,))
        c.execute("ROLLBACK TO sp")
        c.execute("RELEASE sp")
        for k in range(40):
            c.execute("INSERT INTO t VALUES (?, randomblob(3000))", (k,))
        c.execute("COMMIT")
        crashed = os.path.join(d, "crashed.db")
        shutil.copy(path, crashed)
        shutil.copy(path + "-wal", crashed + "-wal")
        c.close()
        r = sqlite3.connect(crashed)
        n = r.execute("SELECT count(*) FROM t").fetchone()[0]
        r.close()
        return n != 40
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ext = sys.argv[1] if len(sys.argv) > 1 else "./vectordb"
    per_mode = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
    print(f"seed {seed}, {per_mode} crashes per journal mode")
    # With that SQLite bug, a WAL child that rolls back to a savepoint can
    # lose a committed transaction to the kill, whatever vectordb does; so
    # WAL children then do not, and the report says so. DELETE mode keeps
    # them, and tests/test_faults.c covers savepoint rollbacks in both modes.
    wal_rollback_to = not sqlite_loses_wal_savepoint_rollbacks()
    if not wal_rollback_to:
        print(f"SQLite {sqlite3.sqlite_version} loses committed WAL transactions in crash recovery after a "
              "ROLLBACK TO of spilled pages (a bug of this SQLite, fixed in newer ones): "
              "WAL children do not roll back to savepoints")
    tmp = tempfile.mkdtemp(prefix="vectordb-crash-")
    passed = failed = 0
    t0 = time.time()
    try:
        global DIM
        for journal, DIM in (("WAL", 128), ("DELETE", 16)):
            rng = random.Random(f"{seed}-{journal}")
            mode = Mode(ext, tmp, journal, rng, rollback_to=wal_rollback_to or journal != "WAL")
            for i in range(per_mode):
                try:
                    mode.cycle()
                    passed += 1
                    if (i + 1) % 50 == 0 and i + 1 < per_mode:
                        print(f"{journal}: {i + 1} crashes survived", flush=True)
                except Failure as e:
                    failed += 1
                    keep = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                        f"crash-fail-{journal.lower()}-{seed}.db")
                    try:
                        for suffix in ("", "-wal", "-journal"):
                            if os.path.exists(keep + suffix):
                                os.remove(keep + suffix)
                            if os.path.exists(mode.path + suffix):
                                shutil.copy(mode.path + suffix, keep + suffix)
                    except OSError:
                        keep = "(not kept)"
                    print(f"FAIL {journal} crash {i + 1}: {e} (database kept as {keep})")
                    break           # the file is no longer a known state
                except Exception:
                    failed += 1
                    print(f"FAIL {journal} crash {i + 1}: error")
                    traceback.print_exc(limit=6, file=sys.stdout)
                    break
            mode.observer.close()
            s = mode.stats
            rc = getattr(mode, "last_recall", (0, 0))
            print(f"{journal}: {i + 1} crashes, {s['txs']} transactions committed, {len(mode.model)} rows, "
                  f"{s['in_doubt']} in doubt at the kill ({s['in_doubt_committed']} had committed), "
                  f"{s['kills_in_commit']} kills aimed at a COMMIT; "
                  f"last recall@10 {rc[0]:.4f} (fresh build {rc[1]:.4f}), "
                  f"at worst {s['worst_gap']:+.4f} below a fresh build; "
                  f"{s['child_s']:.1f} s in children, {s['check_s']:.1f} s checking")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{time.time() - t0:.1f} s")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
