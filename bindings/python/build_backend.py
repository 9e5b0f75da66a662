"""PEP 517 build backend for the vectordb Python package, in the tree so
that installing needs nothing from a package registry (PyPI is not reachable
where vectordb is built, and Python 3.12's venv no longer ships setuptools).

build_wheel runs the repository's own `make vectordb.so` (the same build as
the command line's, CC and OPT honoured) and writes a wheel holding the
package and that loadable extension. The wheel's tag is py3-none-<platform>:
the extension talks to SQLite, not to Python, so one wheel serves every
Python 3 on the platform.

Limits: the package is built from a checkout of the repository (this
directory's ../..); there is no sdist, and no editable install.
"""
import base64
import hashlib
import io
import os
import re
import subprocess
import sysconfig
import zipfile

NAME = "vectordb"
# realpath: reached through a symlink (pip install ./bindings/python from a
# directory that links the checkout in), the checkout is still found.
HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _version():
    with open(os.path.join(ROOT, "src", "vdb_func.h"), encoding="utf-8") as f:
        m = re.search(r'#define VDB_VERSION "([^"]+)"', f.read())
    if not m:
        raise RuntimeError("vectordb: no VDB_VERSION in src/vdb_func.h")
    return m.group(1)


def _check_root():
    for rel in ("Makefile", os.path.join("src", "vdb_main.c")):
        if not os.path.isfile(os.path.join(ROOT, rel)):
            raise RuntimeError(
                "vectordb: the package builds from a checkout of the vectordb "
                "repository, but %s is missing (looked in %s)" % (rel, ROOT))


def _build_extension():
    """Runs the repository's make; returns the path of vectordb.so."""
    cmd = ["make", "--no-print-directory", "-C", ROOT, "vectordb.so"]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    except FileNotFoundError:
        raise RuntimeError("vectordb: building the extension needs make and a C "
                           "compiler (Debian: apt-get install make gcc libsqlite3-dev "
                           "libsimde-dev)")
    if proc.returncode != 0:
        raise RuntimeError("vectordb: `%s` failed:\n%s" % (" ".join(cmd), proc.stdout))
    so = os.path.join(ROOT, "vectordb.so")
    if not os.path.isfile(so):
        raise RuntimeError("vectordb: make succeeded but %s is missing" % so)
    return so


def _tag():
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "py3-none-" + plat


def _metadata(version):
    return ("Metadata-Version: 2.1\n"
            "Name: %s\n"
            "Version: %s\n"
            "Summary: vectordb, vector search inside SQLite: the loadable extension "
            "and helpers for Python's sqlite3\n"
            "License: MIT\n"
            "Requires-Python: >=3.8\n" % (NAME, version))


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "%s,sha256=%s,%d\n" % (arcname, digest.decode("ascii"), len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _check_root()
    version = _version()
    so = _build_extension()
    files = []
    pkg = os.path.join(HERE, NAME)
    for fn in sorted(os.listdir(pkg)):
        if fn.endswith(".py"):
            with open(os.path.join(pkg, fn), "rb") as f:
                files.append(("%s/%s" % (NAME, fn), f.read()))
    with open(so, "rb") as f:
        files.append(("%s/vectordb.so" % NAME, f.read()))
    dist_info = "%s-%s.dist-info" % (NAME, version)
    files.append((dist_info + "/METADATA", _metadata(version).encode()))
    files.append((dist_info + "/WHEEL", (
        "Wheel-Version: 1.0\nGenerator: vectordb build_backend\n"
        "Root-Is-Purelib: false\nTag: %s\n" % _tag()).encode()))
    files.append((dist_info + "/top_level.txt", (NAME + "\n").encode()))
    record = "".join(_record_line(a, d) for a, d in files) + dist_info + "/RECORD,,\n"
    files.append((dist_info + "/RECORD", record.encode()))

    wheel_name = "%s-%s-%s.whl" % (NAME, version, _tag())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if arcname.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    with open(os.path.join(wheel_directory, wheel_name), "wb") as f:
        f.write(buf.getvalue())
    return wheel_name
