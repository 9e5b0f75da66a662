#!/bin/sh
# make install / make uninstall / pkg-config / make amalgamation, checked
# the way a user meets them: README.md's C examples are extracted from the
# README itself, built against an installed prefix through pkg-config and
# from the amalgamation, and run.
#
# usage: sh tests/test_install.sh      (from the repository root, after `make`)
# Ends with "N passed, N failed".
set -u
CC=${CC:-cc}
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() {  # check NAME COMMAND...: passes when COMMAND succeeds
  name=$1; shift
  if "$@" >"$work/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/     /' "$work/out" | head -n 20; fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The README's C examples: the first ```c block after a heading.
readme_block() {  # readme_block "HEADING" OUT
  awk -v h="$1" '
    $0 == h { in_sec = 1; next }
    grab && /^```$/ { exit }
    grab { print; next }
    in_sec && /^#/ { exit }
    in_sec && /^```c$/ { grab = 1 }' README.md >"$2"
  [ -s "$2" ]
}
check "README has the 'C, linked statically' example" readme_block "### C, linked statically" "$work/static.c"
check "README has the pkg-config example" readme_block "### C with pkg-config" "$work/knn.c"
# What the pkg-config example prints: its two nearest rows to [0.9, 0.9]
# are (1,1) at sqrt(0.02) and (0,0) at sqrt(1.62).
printf '3 0.1414\n1 1.2728\n' >"$work/knn.expected"

# ---- make install into a fresh prefix ------------------------------------
prefix=$work/prefix
check "make install PREFIX=..." make --no-print-directory install PREFIX="$prefix"
for f in lib/vectordb.so lib/libvectordb.a include/vectordb.h lib/pkgconfig/vectordb.pc bin/vectordb; do
  check "installed $f" test -f "$prefix/$f"
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "pkg-config knows vectordb" pkg-config --exists vectordb
check "pkg-config --libs has -lvectordb, -lsqlite3 and -lm" \
  sh -c 'l=$(pkg-config --libs vectordb); for w in -lvectordb -lsqlite3 -lm; do echo "$l" | grep -qw -- "$w" || exit 1; done'
check "pkg-config --variable=loadable is the installed extension" \
  test "$(pkg-config --variable=loadable vectordb).so" = "$prefix/lib/vectordb.so"

# The exact commands the README gives.
build_pc() {  # build_pc SRC EXE
  (cd "$work" && $CC "$1" $(pkg-config --cflags --libs vectordb) -o "$2")
}
check "README static example builds with pkg-config" build_pc static.c static-pc
check "README static example runs" "$work/static-pc"
check "pkg-config example builds" build_pc knn.c knn-pc
check "pkg-config example prints the two nearest rows" \
  sh -c '"$1/knn-pc" | cmp - "$1/knn.expected"' sh "$work"
check "the binary does not need vectordb.so at run time" \
  sh -c 'test -x "$1/knn-pc" && ! ldd "$1/knn-pc" | grep -q vectordb' sh "$work"
check "the installed loadable extension loads in the sqlite3 shell" \
  sh -c 'test "$(sqlite3 :memory: ".load $(pkg-config --variable=loadable vectordb)" "SELECT vec_distance_l2(\"[0,0]\", \"[3,4]\")")" = 5.0'

check "the installed vectordb tool runs" sh -c '"$1/bin/vectordb" --version | grep -q "^vectordb "' sh "$prefix"
check "the installed tool does not need vectordb.so at run time" \
  sh -c '! ldd "$1/bin/vectordb" | grep -q vectordb' sh "$prefix"

# ---- make uninstall removes exactly that -----------------------------------
touch "$prefix/lib/someone-elses-file"
check "make uninstall PREFIX=..." make --no-print-directory uninstall PREFIX="$prefix"
check "uninstall removed every installed file and nothing else" \
  sh -c 'test "$(cd "$1" && find . -type f | sort | tr "\n" " ")" = "./lib/someone-elses-file "' sh "$prefix"

# DESTDIR stages under another root while the .pc names the final prefix.
stage=$work/stage
check "make install DESTDIR=... PREFIX=/opt/vdb" make --no-print-directory install DESTDIR="$stage" PREFIX=/opt/vdb
check "staged .pc names the final prefix" grep -qx 'prefix=/opt/vdb' "$stage/opt/vdb/lib/pkgconfig/vectordb.pc"
check "make uninstall DESTDIR=... PREFIX=/opt/vdb empties the stage" \
  sh -c 'make --no-print-directory uninstall DESTDIR="$1" PREFIX=/opt/vdb && test -z "$(find "$1/opt/vdb" -type f 2>/dev/null)"' sh "$stage"

# ---- the amalgamation ------------------------------------------------------
if make --no-print-directory amalgamation >"$work/amal.log" 2>&1; then
  ok "make amalgamation"
  amal=$work/amal
  mkdir -p "$amal"
  cp build/amalgamation/vectordb.c build/amalgamation/vectordb.h "$work/static.c" "$work/knn.c" "$amal/"
  for cc in gcc clang; do
    command -v $cc >/dev/null 2>&1 || { bad "$cc not installed (scripts/deps.sh installs it)"; continue; }
    check "$cc: amalgamation compiles with -Wall -Wextra -Werror" \
      sh -c 'cd "$1" && $2 -std=c11 -O2 -Wall -Wextra -Werror -c vectordb.c -o vectordb-$2.o' sh "$amal" $cc
    check "$cc: README static example, cc app.c vectordb.c -lsqlite3 -lm" \
      sh -c 'cd "$1" && $2 static.c vectordb.c -lsqlite3 -lm -o static-$2 && ./static-$2' sh "$amal" $cc
    check "$cc: pkg-config example from the amalgamation prints the two nearest rows" \
      sh -c 'cd "$1" && $2 -O2 knn.c vectordb-$2.o -lsqlite3 -lm -o knn-$2 && ./knn-$2 | cmp - ../knn.expected' sh "$amal" $cc
    # Every kernel level the CPU has, against the scalar reference: the
    # per-level copies of the SIMD source and the run-time dispatch.
    check "$cc: kernel unit tests against the amalgamation" \
      sh -c 'cd "$1" && $2 -std=c11 -O2 -D_DEFAULT_SOURCE -DSQLITE_CORE -I"$3/src" -I"$3/tests" "$3/tests/test_kernels.c" vectordb-$2.o -lsqlite3 -lm -o tk-$2 && ./tk-$2 | tail -n 1 | grep -q " 0 failed"' \
      sh "$amal" $cc "$PWD"
  done
else
  # Name each clash on the FAIL line itself, where run-tests.sh shows it.
  clashes=$(sed -n 's/^  \([A-Za-z_][A-Za-z0-9_]*\): \(.*\)$/\1 (\2)/p' "$work/amal.log" | tr '\n' ';')
  if [ -n "$clashes" ]; then
    bad "make amalgamation: file-scope names defined in two sources of src/ clash in one file, rename them: $clashes"
  else
    bad "make amalgamation failed"
    grep -v '^/usr/bin/python3\|^  --' "$work/amal.log" | sed 's/^/     /' | head -n 20
  fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
