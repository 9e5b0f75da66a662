#!/usr/bin/python3
"""Write vectordb's amalgamation: one vectordb.c (plus vectordb.h) that an
application compiles with only a C compiler and SQLite:

    cc app.c vectordb.c -lsqlite3 -lm

The Makefile passes the sources and their flags, so the file list lives in
one place (SRCS, KLEVELS, KFLAGS_*, CFLAGS_*):

    amalgamate.py --out DIR --srcdir src --simde /usr/include [--build-flags STR]
                  --src NAME [FLAGS...] ...        a plain source, in link order
                  --simd NAME [FLAGS...] ...       the SIMD source, once per level

How each piece becomes part of one translation unit:
- An internal header ("x.h" found in srcdir) is inlined where it is first
  included and dropped afterwards; system headers stay #include lines;
  simde's headers (<simde/...>) are inlined once, so simde need not be
  installed where the amalgamation is compiled.
- -DNAME=VALUE flags become #define/#undef around their source; -m flags
  of a SIMD level become a target pragma around its copy (GCC:
  push_options/target, which also defines __AVX2__ etc. as -m would;
  clang: `pragma clang attribute`, which does not), and
  the copy's file-scope names get a per-level suffix so the copies do not
  collide. simde itself is included once, for the baseline target, with
  SIMDE_NATURAL_VECTOR_SIZE 512 so that its 256- and 512-bit operations are
  written as plain vector arithmetic that the compiler turns into native
  instructions inside the wider levels' functions (gcc 12 does this well for
  the float32 kernels and poorly for the int8 ones; README.md has figures). Under clang the wider
  levels therefore keep the 128-bit register width of the baseline (clang
  defines no __AVX2__ under its pragma, and refuses 256-bit vector returns
  from simde's functions compiled for the baseline): correct results and the
  dispatch, without the wider registers' speed.
- Macros a source file #defines are #undef'd after it, so they cannot leak
  into the next file.
- Flags other than -D and -m (such as -fno-tree-vectorize for the scalar
  reference kernels) cannot be expressed portably in a source file: they are
  listed in the file's header comment as not applied.

File-scope static names defined by two plain sources would clash in one
file: they are reported (exit status 2, the amalgamation is still written
so the compiler's own messages can be seen), never renamed silently.
"""
import os
import re
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
DEFINE_RE = re.compile(r'^\s*#\s*define\s+([A-Za-z_]\w*)', re.M)


def parse_args(argv):
    opts = {"srcs": [], "simd": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--out", "--srcdir", "--simde", "--build-flags"):
            opts[a[2:].replace("-", "_")] = argv[i + 1]
            i += 2
        elif a in ("--src", "--simd"):
            name = argv[i + 1]
            flags = []
            i += 2
            while i < len(argv) and not argv[i].startswith("--"):
                flags.append(argv[i])
                i += 1
            opts["srcs" if a == "--src" else "simd"].append((name, flags))
        else:
            sys.exit("amalgamate: unexpected argument %r" % a)
    for need in ("out", "srcdir", "simde"):
        if need not in opts:
            sys.exit("amalgamate: --%s is required" % need)
    return opts


class Inliner:
    """Inlines quoted internal headers and simde's headers once each."""

    def __init__(self, srcdir, simde_root):
        self.srcdir = srcdir
        self.simde_root = simde_root
        self.seen = set()

    def header_path(self, kind, name, from_dir):
        if kind == '"':
            for base in (from_dir, self.srcdir):
                p = os.path.normpath(os.path.join(base, name))
                if os.path.isfile(p):
                    return p
            return None
        if name.startswith("simde/"):
            p = os.path.join(self.simde_root, name)
            if not os.path.isfile(p):
                sys.exit("amalgamate: %s not found (install libsimde-dev "
                         "or pass --simde)" % p)
            return p
        return None

    def expand(self, path, out):
        here = os.path.dirname(path)
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = INCLUDE_RE.match(line)
                target = m and self.header_path(m.group(1), m.group(2), here)
                if not target:
                    out.append(line)
                    continue
                key = os.path.realpath(target)
                if key in self.seen:
                    out.append("/* %s: inlined above */\n" % line.strip())
                    continue
                self.seen.add(key)
                out.append("/* begin %s */\n" % display(target))
                self.expand(target, out)
                out.append("/* end %s */\n" % display(target))


def display(path):
    for root in ("/usr/include/",):
        if path.startswith(root):
            return path[len(root):]
    return path


def split_flags(flags):
    defines, targets, ignored = [], [], []
    for fl in flags:
        if fl.startswith("-D"):
            name, _, value = fl[2:].partition("=")
            defines.append((name, value if value else "1"))
        elif fl.startswith("-m"):
            targets.append(fl[2:])
        else:
            ignored.append(fl)
    return defines, targets, ignored


def file_scope_names(text):
    """Names a source defines at file scope: static functions and variables,
    typedefs, struct/union/enum tags defined there."""
    names = set()
    for m in re.finditer(r'^static\b[^;{}=()\n]*?\b([A-Za-z_]\w*)\s*\(', text, re.M):
        names.add(m.group(1))
    for m in re.finditer(r'^static\b(?![^;=(\n]*\()[^;=\n]*?\b([A-Za-z_]\w*)\s*(?:\[[^\]\n]*\]\s*)*[;=]',
                         text, re.M):
        names.add(m.group(1))
    for m in re.finditer(r'^typedef\b[^;{}\n]*?\b([A-Za-z_]\w*)\s*;', text, re.M):
        names.add(m.group(1))
    for m in re.finditer(r'^\}\s*([A-Za-z_]\w*)\s*;', text, re.M):
        names.add(m.group(1))
    for m in re.finditer(r'^(?:typedef\s+)?(?:struct|union|enum)\s+([A-Za-z_]\w*)\s*\{',
                         text, re.M):
        names.add(m.group(1))
    return names


def main():
    o = parse_args(sys.argv[1:])
    srcdir, outdir = o["srcdir"], o["out"]
    inl = Inliner(srcdir, o["simde"])
    out = []
    notes = []

    # Report clashes between plain sources before writing anything else.
    owners = {}
    for name, _ in o["srcs"]:
        with open(os.path.join(srcdir, name + ".c"), encoding="utf-8") as f:
            for ident in file_scope_names(f.read()):
                owners.setdefault(ident, []).append(name + ".c")
    clashes = {k: v for k, v in owners.items() if len(v) > 1}

    levels = [split_flags(fl) for _, fl in o["simd"]]
    body = []
    for name, flags in o["srcs"]:
        path = os.path.join(srcdir, name + ".c")
        defines, targets, ignored = split_flags(flags)
        if name == "vdb_func" and o.get("build_flags"):
            defines = [(n, o["build_flags"] if n == "VDB_BUILD_FLAGS" else v)
                       for n, v in defines]
        if ignored:
            notes.append("%s.c: not applied: %s" % (name, " ".join(ignored)))
        if targets:
            sys.exit("amalgamate: -m flags on a plain source (%s) are not supported" % name)
        with open(path, encoding="utf-8") as f:
            own_macros = set(DEFINE_RE.findall(f.read()))
        body.append("/************** begin %s **************/\n" % path)
        for n, v in defines:
            body.append("#define %s %s\n" % (n, v))
        inl.expand(path, body)
        for n in sorted(own_macros | {n for n, _ in defines}):
            body.append("#undef %s\n" % n)
        body.append("/************** end %s **************/\n" % path)

        # The kernel tables are defined right after the plain sources'
        # headers are in, at the point the Makefile's link order does not
        # matter; emit them once, after the first plain source.
        if name == o["srcs"][0][0]:
            body.extend(simd_sections(o, inl, levels, notes))

    out.append(HEADER % {
        "notes": "".join("**   %s\n" % n for n in notes) or "**   none\n",
    })
    out.extend(body)

    # With clashes the file cannot compile: it is kept under another name
    # for inspection, so that no stale or broken vectordb.c looks built.
    os.makedirs(outdir, exist_ok=True)
    final = os.path.join(outdir, "vectordb.c")
    kept = os.path.join(outdir, "vectordb-with-clashes.c")
    for p in (final, kept):
        if os.path.exists(p):
            os.remove(p)
    tmp = final + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(out)
    os.replace(tmp, kept if clashes else final)
    with open(os.path.join(srcdir, "vectordb.h"), encoding="utf-8") as f:
        hdr = f.read()
    with open(os.path.join(outdir, "vectordb.h"), "w", encoding="utf-8") as f:
        f.write(hdr)

    if clashes:
        sys.stderr.write("amalgamate: file-scope names defined in more than one source "
                         "(they clash in one file; rename them in src/):\n")
        for ident in sorted(clashes):
            sys.stderr.write("  %s: %s\n" % (ident, ", ".join(clashes[ident])))
        sys.exit(2)


def simd_sections(o, inl, levels, notes):
    srcdir = o["srcdir"]
    sections = []
    # simde once, for the baseline target (see the module docstring).
    sections.append("#ifndef SIMDE_NATURAL_VECTOR_SIZE\n"
                    "# define SIMDE_NATURAL_VECTOR_SIZE 512\n#endif\n")
    for name, _ in o["simd"][:1]:
        with open(os.path.join(srcdir, name + ".c"), encoding="utf-8") as f:
            for line in f:
                m = INCLUDE_RE.match(line)
                if m and m.group(2).startswith("simde/"):
                    tmp = os.path.join(o["out"], "simde-include.tmp")
                    os.makedirs(o["out"], exist_ok=True)
                    with open(tmp, "w", encoding="utf-8") as t:
                        t.write(line)
                    inl.expand(tmp, sections)
                    os.remove(tmp)
    for (name, _), (defines, targets, ignored) in zip(o["simd"], levels):
        path = os.path.join(srcdir, name + ".c")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        names = file_scope_names(text)
        own_macros = set(DEFINE_RE.findall(text))
        level = dict(defines).get("VDB_KERNEL_NAME", '"level%d"' % len(sections)).strip('"')
        if ignored:
            notes.append("%s.c (%s): not applied: %s" % (name, level, " ".join(ignored)))
        s = ["/************** begin %s, level %s **************/\n" % (path, level)]
        if targets:
            feats = ",".join(targets)
            s.append("#if defined(__x86_64__) || defined(__i386__)\n")
            s.append("#if defined(__clang__)\n")
            s.append("#pragma clang attribute push(__attribute__((target(\"%s\"))), "
                     "apply_to=function)\n" % feats)
            s.append("#else\n#pragma GCC push_options\n#pragma GCC target(\"%s\")\n#endif\n"
                     % feats)
        for n, v in defines:
            s.append("#define %s %s\n" % (n, v))
        for n in sorted(names):
            s.append("#define %s %s_%s\n" % (n, n, level))
        inl.expand(path, s)
        for n in sorted(own_macros | {n for n, _ in defines} | names):
            s.append("#undef %s\n" % n)
        if targets:
            s.append("#if defined(__clang__)\n")
            s.append("#pragma clang attribute pop\n#else\n#pragma GCC pop_options\n#endif\n")
            s.append("#endif\n")
        s.append("/************** end %s, level %s **************/\n" % (path, level))
        sections.extend(s)
    return sections


HEADER = """\
/*
** vectordb amalgamation: every source of vectordb in one file, generated by
** scripts/amalgamate.py (`make amalgamation`); do not edit. Compile it into
** an application together with vectordb.h:
**
**   cc app.c vectordb.c -lsqlite3 -lm
**
** It is built with SQLITE_CORE (linked into the application, registered
** with sqlite3_auto_extension(sqlite3_vectordb_init)). simde's headers
** (MIT license, https://github.com/simd-everywhere/simde) are inlined below
** with their license notices.
**
** Build flags of the Makefile that a source file cannot carry:
%(notes)s*/
#ifndef SQLITE_CORE
# define SQLITE_CORE 1
#endif
#ifndef _DEFAULT_SOURCE
# define _DEFAULT_SOURCE 1
#endif
"""

if __name__ == "__main__":
    main()
