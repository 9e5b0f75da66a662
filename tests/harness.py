"""A small test runner for the SQL-level suites.

Each suite is a module with functions named test_*; run() calls them in
source order, reports every failure with its message and ends with the line
"N passed, N failed" that scripts/run-tests.sh sums. Debian's
/usr/bin/python3 is used because its sqlite3 module can load extensions.
"""
import inspect
import sqlite3
import sys
import traceback


def connect(ext_path, database=":memory:"):
    """A connection with vectordb loaded from ext_path (no suffix needed)."""
    db = sqlite3.connect(database, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(ext_path)
    db.enable_load_extension(False)
    return db


def one(db, sql, *params):
    """The single value of a one-row, one-column query."""
    row = db.execute(sql, params).fetchone()
    assert row is not None, f"no row from {sql}"
    return row[0]


def expect_error(db, sql, *fragments, params=()):
    """Run sql, which must fail with a message containing every fragment."""
    try:
        db.execute(sql, params).fetchall()
    except sqlite3.Error as e:
        msg = str(e)
        for f in fragments:
            assert f in msg, f"error for {sql!r} was {msg!r}, expected to contain {f!r}"
        return msg
    raise AssertionError(f"expected an error from {sql!r}")


def varint(x):
    """x as the LEB128 varint of vdb_format.h."""
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def encode_links(layers):
    """A format 3 T_hnswNN.links BLOB (vdb_format.h) for a list of layers,
    each a list of node ids. Written from the format's description, not
    from the C code, so each checks the other."""
    out = bytearray()
    for ids in layers:
        out += varint(len(ids))
        prev = 0
        for x in sorted(ids):
            out += varint(x - prev)
            prev = x
    return bytes(out)


def decode_links(blob):
    """The layers of node ids of a format 3 links BLOB."""
    pos = 0

    def get():
        nonlocal pos
        x = shift = 0
        while True:
            b = blob[pos]
            pos += 1
            x |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return x
    layers = []
    while pos < len(blob):
        n, prev, ids = get(), 0, []
        for _ in range(n):
            prev += get()
            ids.append(prev)
        layers.append(ids)
    return layers


def run(module_globals):
    tests = [(name, fn) for name, fn in module_globals.items()
             if name.startswith("test_") and inspect.isfunction(fn)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    only = sys.argv[3] if len(sys.argv) > 3 else None
    passed = failed = 0
    for name, fn in tests:
        if only and only not in name:
            continue
        try:
            fn()
            passed += 1
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(limit=4, file=sys.stdout)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
