"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

usage: python3 tests/fuzz/gen_corpus.py [TARGET...]

Seeds are small, hand-picked inputs in each target's input encoding (see
the comment at the top of each tests/fuzz/fuzz_*.c): valid and invalid
vectors, declarations from the README and the tests, operation sequences
and database images. The output is deterministic, except fuzz_dbimage's:
its seeds are a database image (whose index names carry a random token)
and edit lists, which its binary writes itself when FUZZ_DBIMAGE_SEEDS
names a directory, so the image always matches what the target builds.
"""
import os
import random
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_vector: mode byte < 0x60 parser, >= 0x60 SQL ------------------------

def vector_seeds():
    texts = ["[1,2,3]", "[1.5, -2, 3e10, -0.0, 0]", " [ 1 , 2 ] ", "[1e39]", "[-1e-45]",
             "[1 2]", "[1,2,]", "[1]x", "[1", "[NaN]", "[+1]", "[.5]", "[01]", "[0x10]",
             "[127,-128,0]", "[128]", "[1.0]", "[]", "[3.4028235e38, -3.4028235e38]",
             "[1.17549435e-38, 1e-45]", "[" + ",".join(str(i % 7) for i in range(300)) + "]"]
    for i, t in enumerate(texts):
        write("fuzz_vector", f"parse-json-{i:02d}", bytes([i % 4]) + t.encode())
    blobs = [struct.pack("<3f", 1, 2, 3), struct.pack("<2f", float("nan"), 1),
             struct.pack("<f", float("inf")), b"\x01\x02\x03", b"\x80\x7f\x00\x01",
             struct.pack("<f", -0.0) + struct.pack("<f", 1e-40)]
    for i, b in enumerate(blobs):
        write("fuzz_vector", f"parse-blob-{i:02d}", bytes([1 + i % 3]) + b)
    # SQL mode: template index (1 byte, as fuzzRange(0, N-1) reads it), then per
    # argument a kind byte and its payload. Kind 4 is generated JSON, 5 a float
    # BLOB, 2 a small integer, 0 raw text, 1 raw BLOB.
    rnd = random.Random(6)
    for t in range(31):
        args = b""
        for _ in range(3):
            kind = rnd.choice([0, 1, 2, 4, 4, 5, 5])
            if kind == 4:
                args += bytes([4, rnd.randrange(2), rnd.randrange(8)])
                args += bytes(rnd.randrange(0xf0) for _ in range(16))
            elif kind == 5:
                args += bytes([5, rnd.randrange(8)]) + bytes(rnd.randrange(0xf0) for _ in range(8))
            elif kind == 2:
                args += bytes([2, rnd.randrange(20)])
            else:
                payload = b"[1,2,3,4]" if kind == 0 else struct.pack("<4f", 1, 2, 3, 4)
                args += bytes([kind, len(payload)]) + payload
        write("fuzz_vector", f"sql-{t:02d}", bytes([0x60 + t % 0x9f, t]) + args)


# ---- fuzz_schema: declaration, then NUL-separated commands ----------------------

def schema_seeds():
    decls = [
        "embedding float[8] distance_metric=cosine INDEXED BY hnsw(m=8), genre text, +aux text",
        "id integer primary key, embedding float[4] distance_metric=cosine, "
        "user_id integer partition key, genre text, +body text",
        "id text primary key, e float[3], q int8[4], b bit[16], part text partition key, "
        "genre text, year integer, score float, flag boolean, +body text, +extra",
        "e float[4], chunk_size=8",
        "e float[2] INDEXED BY hnsw(m=2, ef_construction=2, ef_search=1)",
        "e float[16] distance_metric=dot INDEXED BY hnsw(m=128, ef_construction=4096)",
        "e float[4] INDEXED BY flat()",
        "a float[2], b float[2] INDEXED BY hnsw(), c int8[2] distance_metric=l1",
        "e bit[64]",
        "e float64[4]", "e float[4] distance_metric=manhattan", "e float[9000]",
        "e float[4], chunk_size=10", "e float[4], colour=red", "genre text",
        "e float[4], e text", "e int8[4] INDEXED BY hnsw()",
        "\"quoted name\" float[2], [br]]acket] text, `back``tick` integer",
        "e float[2] /* comment, with comma */, -- line\n t text",
        "e float[8192], chunk_size=8",
    ]
    cmds = [b"ef_search=10", b"cache_mb=1", b"integrity-check", b"ef_search=0",
            b"cache_mb=99999999999", b"bogus", b"EF_SEARCH=4096", b""]
    for i, d in enumerate(decls):
        tail = b"\x00".join(cmds[j % len(cmds)] for j in range(i % 4 + 1))
        write("fuzz_schema", f"decl-{i:02d}", d.encode() + b"\x00" + tail)


# ---- fuzz_sql: a shape byte, then one operation per byte and its arguments ----

def sql_seeds():
    rnd = random.Random(11)
    # Operation bytes (low nibble): 0/1 insert, 2 update vector, 3 update genre
    # or rowid, 4 delete, 5/6 KNN, 7 BEGIN/COMMIT, 8 ROLLBACK, 9 SAVEPOINT,
    # 10 RELEASE / ROLLBACK TO, 11 command, 12 invalid write, 13 switch
    # connection, 14 point query, 15 bulk delete.
    scripts = [
        [0x07, 0x30, 0x30, 0x30, 0x19, 0x02, 0x0a, 0x17, 0x05],
        [0x30, 0x30, 0x30, 0x30, 0x14, 0x24, 0x05, 0x15, 0x35],
        [0x07, 0x20, 0x21, 0x1c, 0x0c, 0x17, 0x1d, 0x05, 0x0d, 0x05],
        [0x0b, 0x30, 0x31, 0x13, 0x03, 0x09, 0x04, 0x1a, 0x08, 0x56],
    ]
    for i, ops in enumerate(scripts):
        body = b""
        for op in ops:
            body += bytes([op]) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(3, 14)))
        write("fuzz_sql", f"script-{i:02d}", bytes([i * 37 % 256]) + body)
    for i in range(24):
        shape = rnd.randrange(256)
        n = rnd.choice([40, 120, 300, 700])
        write("fuzz_sql", f"random-{i:02d}", bytes([shape]) + bytes(rnd.randrange(256) for _ in range(n)))


# ---- fuzz_dbimage: the valid database image and edit lists, from the binary ----

def dbimage_seeds():
    binary = os.path.join(HERE, "..", "..", "build", "fuzz", "fuzz_dbimage")
    d = os.path.join(HERE, "corpus", "fuzz_dbimage")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is not built: make build/fuzz/fuzz_dbimage first")
    os.makedirs(d, exist_ok=True)
    subprocess.run([binary], env=dict(os.environ, FUZZ_DBIMAGE_SEEDS=d), check=True)


TARGETS = {"fuzz_vector": vector_seeds, "fuzz_schema": schema_seeds, "fuzz_sql": sql_seeds,
           "fuzz_dbimage": dbimage_seeds}


def main():
    names = sys.argv[1:] or list(TARGETS)
    for name in names:
        TARGETS[name]()


if __name__ == "__main__":
    main()
