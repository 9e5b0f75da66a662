"""vectordb for Python's sqlite3: the loadable extension and vector helpers.

    import sqlite3, vectordb
    db = sqlite3.connect(":memory:")
    vectordb.load(db)
    db.execute("CREATE VIRTUAL TABLE items USING vectordb(embedding float[3])")
    db.execute("INSERT INTO items(rowid, embedding) VALUES (1, ?)",
               (vectordb.serialize_float32([0.1, 0.2, 0.3]),))

Vectors go to SQLite as BLOBs in the machine's byte order (little-endian on
x86-64 and aarch64): float32 as 4 bytes per element, int8 as 1. JSON text
('[0.1, 0.2, 0.3]') works as well.
"""
import array
import math
import os
import sqlite3
import struct

__all__ = ["load", "loadable_path", "serialize_float32", "serialize_int8",
           "deserialize_float32"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def loadable_path():
    """Path of the bundled loadable extension without its file suffix, as
    sqlite3's Connection.load_extension() and the shell's .load take it."""
    path = os.path.join(_HERE, "vectordb")
    if not os.path.isfile(path + ".so"):
        raise FileNotFoundError("vectordb: the loadable extension %s.so is missing "
                                "from the installed package" % path)
    return path


def load(conn):
    """Loads vectordb into the sqlite3.Connection conn.

    Extension loading is enabled only for the load and left as it was found:
    if it was disabled, it is disabled again afterwards; if the C-level
    loading was already allowed (Debian's libsqlite3 allows it by default),
    nothing is changed. Python cannot read the setting, so load() first tries
    to load and enables loading only when SQLite answers "not authorized".
    Raises sqlite3.OperationalError if the extension cannot be loaded, and
    RuntimeError if this Python's sqlite3 module was built without extension
    loading (pyenv and some other builds; Debian's /usr/bin/python3 has it).
    """
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError("vectordb.load() expects a sqlite3.Connection, got %s"
                        % type(conn).__name__)
    if not hasattr(conn, "enable_load_extension"):
        raise RuntimeError("vectordb: this Python's sqlite3 module cannot load "
                           "extensions (it was built without enable_load_extension); "
                           "use one that can, e.g. Debian's /usr/bin/python3")
    path = loadable_path()
    # Python cannot read the current setting, so try first: loading succeeds
    # only when it is already enabled, and then nothing needs restoring.
    try:
        conn.load_extension(path)
        return
    except sqlite3.OperationalError as e:
        if "not authorized" not in str(e):
            raise
    conn.enable_load_extension(True)
    try:
        conn.load_extension(path)
    finally:
        conn.enable_load_extension(False)


def _buffer_view(obj):
    """A memoryview of obj if it exposes the buffer protocol, else None."""
    if isinstance(obj, (str, bytes, bytearray)):
        return None
    try:
        return memoryview(obj)
    except TypeError:
        return None


# Buffer format codes (struct module, as numpy exports them) by dtype name.
_FORMATS = {"f": "float32", "d": "float64", "e": "float16", "g": "float128",
            "b": "int8", "B": "uint8", "h": "int16", "H": "uint16",
            "i": "int32", "I": "uint32", "l": "int64", "L": "uint64",
            "q": "int64", "Q": "uint64", "?": "bool"}


def _check_buffer(mv, fmt_ok, itemsize, what, hint):
    if mv.ndim != 1:
        raise ValueError("vectordb: a vector must be 1-dimensional, got %d dimensions "
                         "(shape %s)" % (mv.ndim, mv.shape))
    fmt = mv.format.lstrip("@=<")
    if fmt not in fmt_ok or mv.itemsize != itemsize:
        raise TypeError("vectordb: %s expects %s elements, got %s (buffer format %r, "
                        "%d bytes each)%s" % (what, _FORMATS[fmt_ok[0]],
                                              _FORMATS.get(fmt, "another type"),
                                              mv.format, mv.itemsize, hint))
    if not mv.c_contiguous:
        raise ValueError("vectordb: %s needs a contiguous array (a strided view or "
                         "slice with a step is not); copy it first, e.g. with "
                         "numpy.ascontiguousarray()" % what)


def serialize_float32(vector):
    """The float32 BLOB of vector, for a float[N] column or a MATCH query.

    vector is a sequence of numbers (list, tuple, ...) or an object with the
    buffer protocol (a numpy.ndarray, array.array('f'), memoryview) that is
    1-dimensional, C-contiguous and of dtype float32 ('f', 4 bytes) in the
    machine's byte order: such an array can also be passed to sqlite3
    directly as a parameter (sqlite3 binds any buffer as a BLOB), but then
    nothing checks its dtype or layout, and a float64 array would be read as
    twice as many float32 values. Here a float64 or integer array raises
    TypeError (convert with arr.astype(numpy.float32)) and a non-contiguous
    one ValueError (numpy.ascontiguousarray(arr)). NaN and infinity are
    refused (ValueError naming the element), as vectordb refuses them, and
    so are numbers beyond float32's range; an empty vector is refused too.
    """
    mv = _buffer_view(vector)
    if mv is not None:
        _check_buffer(mv, ("f",), 4, "serialize_float32",
                      "; convert it, e.g. arr.astype(numpy.float32)")
        data = mv.tobytes()
        values = array.array("f", data)
    else:
        if isinstance(vector, (str, bytes, bytearray)) or not hasattr(vector, "__len__"):
            raise TypeError("vectordb: serialize_float32 expects a sequence of numbers "
                            "or a float32 array, got %s" % type(vector).__name__)
        values = vector
        data = None
    if len(values) == 0:
        raise ValueError("vectordb: a vector needs at least one element")
    for i, x in enumerate(values):
        if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
            raise TypeError("vectordb: element %d is %s, not a number" % (i, type(x).__name__))
        f = float(x)
        if math.isnan(f) or math.isinf(f):
            raise ValueError("vectordb: element %d is %s; vectors must be finite" % (i, f))
    if data is not None:
        return data
    try:
        return struct.pack("=%df" % len(values), *[float(x) for x in values])
    except OverflowError:
        for i, x in enumerate(values):
            try:
                struct.pack("=f", float(x))
            except OverflowError:
                raise ValueError("vectordb: element %d (%r) is beyond float32's range" % (i, x))
        raise


def serialize_int8(vector):
    """The int8 BLOB of vector, for an int8[N] column or a MATCH query.

    vector is a sequence of integers in -128..127, or a 1-dimensional,
    C-contiguous buffer of dtype int8 ('b', numpy.int8). Other dtypes
    (including uint8) raise TypeError, non-contiguous arrays ValueError,
    out-of-range or non-integer elements ValueError/TypeError naming the
    element; an empty vector is refused.
    """
    mv = _buffer_view(vector)
    if mv is not None:
        _check_buffer(mv, ("b",), 1, "serialize_int8",
                      "; convert it, e.g. arr.astype(numpy.int8) after checking the range")
        if mv.nbytes == 0:
            raise ValueError("vectordb: a vector needs at least one element")
        return mv.tobytes()
    if isinstance(vector, (str, bytes, bytearray)) or not hasattr(vector, "__len__"):
        raise TypeError("vectordb: serialize_int8 expects a sequence of integers "
                        "or an int8 array, got %s" % type(vector).__name__)
    if len(vector) == 0:
        raise ValueError("vectordb: a vector needs at least one element")
    out = bytearray(len(vector))
    for i, x in enumerate(vector):
        if isinstance(x, bool) or not hasattr(x, "__index__"):
            raise TypeError("vectordb: element %d is %s, not an integer"
                            % (i, type(x).__name__))
        v = x.__index__()
        if not -128 <= v <= 127:
            raise ValueError("vectordb: element %d (%d) is outside int8's -128..127" % (i, v))
        out[i] = v & 0xFF
    return bytes(out)


def deserialize_float32(blob):
    """The list of floats in a float32 BLOB (what vectordb returns for a
    float[N] column). Raises ValueError if its length is not a multiple of 4."""
    mv = _buffer_view(blob) if not isinstance(blob, (bytes, bytearray)) else memoryview(blob)
    if mv is None:
        raise TypeError("vectordb: deserialize_float32 expects bytes, got %s"
                        % type(blob).__name__)
    if mv.nbytes % 4:
        raise ValueError("vectordb: a float32 BLOB has a multiple of 4 bytes, got %d"
                         % mv.nbytes)
    return array.array("f", mv.tobytes()).tolist()
