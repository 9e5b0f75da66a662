"""The Python package (bindings/python): installed with pip into a fresh
virtual environment made by Debian's /usr/bin/python3 -m venv, offline
(--no-index: nothing may come from a registry), then used from that
environment and, with Debian's numpy, from this process.

usage: /usr/bin/python3 tests/test_python_pkg.py [REPO_ROOT]
"""
import math
import os
import sqlite3
import struct
import subprocess
import sys
import sysconfig
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), ".."))
TMP = tempfile.TemporaryDirectory(prefix="vdb-py-")
VENV = os.path.join(TMP.name, "env")
VPY = os.path.join(VENV, "bin", "python")


def sh(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       cwd=TMP.name, **kw)
    assert p.returncode == 0, "%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout)
    return p.stdout


def readme_install_command():
    """README.md's install command (section "Python package"), which is run
    as printed in a directory that links the checkout's bindings/ in, with
    pip kept off every index: "offline: nothing comes from PyPI"."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        sec = f.read().split("\n### Python package\n", 1)[1]
    cmd = sec.split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "venv env" in cmd and "./bindings/python" in cmd, cmd
    return cmd


# Install once; every test below uses the installed copy.
INSTALL_LOG = None
INSTALL_ERROR = None
try:
    os.symlink(os.path.join(ROOT, "bindings"), os.path.join(TMP.name, "bindings"))
    INSTALL_LOG = sh(["bash", "-e", "-c", readme_install_command()],
                     env=dict(os.environ, PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1"))
    SITE = sh([VPY, "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"]).strip()
    # The same Python version: this process can import the installed package
    # (and use Debian's numpy, which the venv cannot get without a registry).
    assert sysconfig.get_python_version() in SITE
    sys.path.insert(0, SITE)
    import vectordb  # noqa: E402
except Exception as e:  # reported by the first test, so the suite still ends with its line
    INSTALL_ERROR = e


def test_pip_install_offline_into_fresh_venv():
    assert INSTALL_ERROR is None, "install failed: %s" % INSTALL_ERROR
    assert "Successfully installed vectordb" in INSTALL_LOG, INSTALL_LOG
    assert vectordb.__file__.startswith(SITE), vectordb.__file__
    assert os.path.isfile(os.path.join(SITE, "vectordb", "vectordb.so"))


def test_knn_query_in_the_venv():
    """The venv's own Python answers a KNN query through vectordb.load()."""
    rows = {1: [0.0, 0.0, 1.0], 2: [3.0, 4.0, 0.0], 3: [1.0, 1.0, 1.0], 4: [-2.0, 0.5, 0.0]}
    q = [0.9, 0.8, 1.1]
    script = (
        "import sqlite3, vectordb\n"
        "db = sqlite3.connect(':memory:')\n"
        "vectordb.load(db)\n"
        "db.execute('CREATE VIRTUAL TABLE items USING vectordb(embedding float[3])')\n"
        "for rid, v in %r.items():\n"
        "    db.execute('INSERT INTO items(rowid, embedding) VALUES (?, ?)',"
        " (rid, vectordb.serialize_float32(v)))\n"
        "for rid, d in db.execute('SELECT rowid, distance FROM items"
        " WHERE embedding MATCH ? AND k = 3', (vectordb.serialize_float32(%r),)):\n"
        "    print(rid, repr(d))\n" % (rows, q))
    out = sh([VPY, "-c", script])
    got = [(int(a), float(b)) for a, b in (line.split() for line in out.splitlines())]
    want = sorted(((math.dist(v, q), rid) for rid, v in rows.items()))[:3]
    assert [r for r, _ in got] == [rid for _, rid in want], (got, want)
    for (_, d), (w, _) in zip(got, want):
        assert abs(d - w) < 1e-5, (got, want)


def probe(conn):
    """Whether the C-level load_extension is allowed on conn."""
    try:
        conn.load_extension(vectordb.loadable_path())
        return "allowed"
    except sqlite3.OperationalError as e:
        assert "not authorized" in str(e), e
        return "not authorized"


def test_load_leaves_the_default_setting():
    before = probe(sqlite3.connect(":memory:"))
    db = sqlite3.connect(":memory:")
    vectordb.load(db)
    assert db.execute("SELECT vec_version()").fetchone()[0].startswith("v")
    assert probe(db) == before


def test_load_disables_again_what_was_disabled():
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(False)
    vectordb.load(db)
    assert db.execute("SELECT vec_distance_l2('[0,0]', '[3,4]')").fetchone()[0] == 5.0
    assert probe(db) == "not authorized"


def test_load_keeps_enabled_what_was_enabled():
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    vectordb.load(db)
    assert probe(db) == "allowed"
    # The SQL function too, which only enable_load_extension(True) allows:
    # loading a missing file fails for that reason, not "not authorized".
    try:
        db.execute("SELECT load_extension('/nonexistent/vdb-probe')").fetchall()
    except sqlite3.OperationalError as e:
        assert "not authorized" not in str(e) and "vdb-probe" in str(e), e
    else:
        raise AssertionError("loading a missing file succeeded")


def test_load_rejects_what_is_not_a_connection():
    for bad in (None, ":memory:", sqlite3.connect(":memory:").cursor()):
        try:
            vectordb.load(bad)
        except TypeError as e:
            assert "sqlite3.Connection" in str(e)
        else:
            raise AssertionError("load(%r) did not fail" % (bad,))


def test_loadable_path():
    p = vectordb.loadable_path()
    assert not p.endswith(".so") and os.path.isfile(p + ".so")
    assert p.startswith(SITE)
    out = sh(["sqlite3", ":memory:", ".load " + p, "SELECT vec_length('[1,2,3]')"])
    assert out.strip() == "3", out


def db_loaded():
    db = sqlite3.connect(":memory:")
    vectordb.load(db)
    return db


def test_serialize_float32_of_lists_and_arrays():
    v = [0.5, -1.25, 3.0, 1e-3]
    b = vectordb.serialize_float32(v)
    assert b == struct.pack("=4f", *v)
    assert vectordb.serialize_float32(tuple(v)) == b
    assert vectordb.serialize_float32(np.array(v, dtype=np.float32)) == b
    assert vectordb.serialize_float32([np.float32(x) for x in v]) == b
    assert vectordb.serialize_float32([1, 2]) == struct.pack("=2f", 1, 2)
    assert vectordb.deserialize_float32(b) == [struct.unpack("=f", struct.pack("=f", x))[0]
                                               for x in v]
    db = db_loaded()
    assert db.execute("SELECT vec_length(?)", (b,)).fetchone()[0] == 4


def test_numpy_float32_array_as_a_parameter():
    db = db_loaded()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e float[4])")
    rng = np.random.default_rng(7)
    data = rng.standard_normal((50, 4)).astype(np.float32)
    for i, row in enumerate(data):
        db.execute("INSERT INTO t(rowid, e) VALUES (?, ?)", (i + 1, row))  # buffer protocol
    q = rng.standard_normal(4).astype(np.float32)
    direct = db.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = 5", (q,)).fetchall()
    helper = db.execute("SELECT rowid FROM t WHERE e MATCH ? AND k = 5",
                        (vectordb.serialize_float32(q),)).fetchall()
    want = (np.argsort(((data - q) ** 2).sum(axis=1), kind="stable")[:5] + 1).tolist()
    assert [r for (r,) in direct] == want and direct == helper
    stored = db.execute("SELECT e FROM t WHERE rowid = 3").fetchone()[0]
    assert np.array_equal(np.frombuffer(stored, dtype=np.float32), data[2])
    # Why the helper checks dtypes: a float64 array bound directly is read
    # as twice as many float32 values.
    try:
        db.execute("INSERT INTO t(rowid, e) VALUES (99, ?)", (q.astype(np.float64),))
    except sqlite3.Error as e:
        assert "expects 4 dimensions, got 8" in str(e), e
    else:
        raise AssertionError("a float64 array was accepted")


def expect(exc, fragment, fn, *args):
    try:
        fn(*args)
    except exc as e:
        assert fragment in str(e), "%r does not contain %r" % (str(e), fragment)
        return
    except Exception as e:
        raise AssertionError("expected %s(%r), got %r" % (exc.__name__, fragment, e))
    raise AssertionError("expected %s(%r), nothing raised" % (exc.__name__, fragment))


def test_serialize_float32_errors():
    f = vectordb.serialize_float32
    a = np.arange(8, dtype=np.float32)
    expect(TypeError, "expects float32 elements, got float64", f, np.zeros(3))
    expect(TypeError, "astype(numpy.float32)", f, np.zeros(3, dtype=np.int32))
    expect(TypeError, "astype", f, np.zeros(3, dtype=np.float16))
    expect(ValueError, "contiguous", f, a[::2])
    expect(ValueError, "1-dimensional", f, a.reshape(2, 4))
    expect(ValueError, "1-dimensional", f, np.float32(1.0).reshape(()))
    expect(ValueError, "element 1 is nan", f, [0.0, float("nan"), 1.0])
    expect(ValueError, "element 2 is inf", f, np.array([0, 1, np.inf], dtype=np.float32))
    expect(ValueError, "element 0 is -inf", f, [float("-inf")])
    expect(ValueError, "element 1 (1e+39) is beyond float32", f, [1.0, 1e39])
    expect(ValueError, "at least one element", f, [])
    expect(ValueError, "at least one element", f, np.zeros(0, dtype=np.float32))
    expect(TypeError, "got str", f, "[1, 2]")
    expect(TypeError, "got bytes", f, b"\x00\x00\x80\x3f")
    expect(TypeError, "got int", f, 3)
    expect(TypeError, "element 1 is str", f, [1.0, "2"])
    expect(TypeError, "element 0 is bool", f, [True, 1.0])
    expect(TypeError, "element 0 is NoneType", f, [None])


def test_serialize_int8():
    g = vectordb.serialize_int8
    assert g([-128, 0, 5, 127]) == bytes([0x80, 0, 5, 0x7F])
    assert g(np.array([-128, 0, 5, 127], dtype=np.int8)) == bytes([0x80, 0, 5, 0x7F])
    assert g([np.int64(3)]) == b"\x03"
    db = db_loaded()
    db.execute("CREATE VIRTUAL TABLE t USING vectordb(e int8[3])")
    db.execute("INSERT INTO t(rowid, e) VALUES (1, vec_int8(?)), (2, vec_int8(?))",
               (g([1, 2, 3]), g([-100, 50, 0])))
    assert db.execute("SELECT rowid FROM t WHERE e MATCH vec_int8(?) AND k = 1",
                      (g([-90, 40, 1]),)).fetchall() == [(2,)]
    assert db.execute("SELECT vec_to_json(e) FROM t WHERE rowid = 2").fetchone()[0] == "[-100,50,0]"
    expect(ValueError, "element 1 (128) is outside int8", g, [0, 128])
    expect(ValueError, "element 0 (-129)", g, [-129])
    expect(TypeError, "element 0 is float", g, [1.5])
    expect(TypeError, "element 0 is bool", g, [False])
    expect(TypeError, "expects int8 elements, got uint8", g, np.zeros(3, dtype=np.uint8))
    expect(TypeError, "int8 elements", g, np.zeros(3, dtype=np.int16))
    expect(ValueError, "contiguous", g, np.zeros(8, dtype=np.int8)[::2])
    expect(ValueError, "at least one element", g, [])
    expect(ValueError, "at least one element", g, np.zeros(0, dtype=np.int8))
    expect(TypeError, "got str", g, "abc")


def test_deserialize_float32():
    h = vectordb.deserialize_float32
    assert h(b"") == []
    assert h(struct.pack("=2f", 1.5, -2.0)) == [1.5, -2.0]
    assert h(bytearray(struct.pack("=f", 4.0))) == [4.0]
    assert h(memoryview(struct.pack("=f", 4.0))) == [4.0]
    db = db_loaded()
    assert h(db.execute("SELECT vec_f32('[1.5, 2.5]')").fetchone()[0]) == [1.5, 2.5]
    expect(ValueError, "multiple of 4 bytes, got 5", h, b"\x00" * 5)
    expect(TypeError, "expects bytes, got str", h, "abcd")
    expect(TypeError, "expects bytes, got NoneType", h, None)


def test_readme_example():
    """README.md's example (section "Python package") runs as printed."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    sec = text.split("\n### Python package\n", 1)[1]
    code = sec.split("```python\n", 1)[1].split("\n```", 1)[0]
    env = dict(os.environ, PYTHONPATH=SITE)
    out = sh(["/usr/bin/python3", "-c", code], env=env)
    assert out.startswith("[(2, 0.1414"), out


run(globals())
