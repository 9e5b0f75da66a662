#!/bin/sh
# Run every test suite, print each suite's own closing line, and end with
# the total "N passed, N failed". Exits non-zero if any suite failed or
# could not report.
#
# Each suite prints "N passed, N failed" as its last such line; a suite
# that crashes before printing it counts as one failure.
set -u
PY=${PYTHON:-/usr/bin/python3}
ASAN_LIB=$(${CC:-cc} -print-file-name=libasan.so)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
SQLITE_VEC=.cache/sqlite-vec-0.1.9/vec0

# Each suite's wall time and the CPU time (user+sys) of its processes,
# printed after its result: the machine may be shared, so wall time alone
# says little. `times` reports this shell's children's CPU time only when
# this shell runs it (not in $(...) or a pipe, which are subshells), so
# mark_cpu writes it to a file and cpu_mark reads that file.
mkdir -p build/test-logs
times_file=build/test-logs/.times
now() { date +%s.%N; }
mark_cpu() { times >"$times_file"; }
cpu_mark() {
  awk 'NR==2 { split($1,u,"m"); split($2,s,"m"); printf "%.2f", u[1]*60+u[2]+s[1]*60+s[2] }' "$times_file"
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b-a }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null; }
echo "load average at start: $(loadavg)"
run_start=$(now); mark_cpu; run_cpu0=$(cpu_mark)

total_pass=0; total_fail=0; failed_suites=""
run_suite() {
  name=$1; shift
  log=build/test-logs/$name.log
  suite_start=$(now); mark_cpu; suite_cpu0=$(cpu_mark)
  "$@" >"$log" 2>&1
  status=$?
  suite_end=$(now); mark_cpu
  took="$(elapsed "$suite_start" "$suite_end") s, cpu $(elapsed "$suite_cpu0" "$(cpu_mark)") s"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    pass=0; fail=1
  else
    pass=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    fail=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    [ "$status" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
  fi
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail))
  if [ "$fail" -ne 0 ]; then
    failed_suites="$failed_suites $name"
    echo "== $name: $pass passed, $fail failed (exit $status; $took); log $log:"
    grep -E 'FAIL|Error|ERROR|error:|runtime error|Sanitizer' "$log" | head -n 30
  else
    echo "== $name: $pass passed, 0 failed ($took)"
  fi
}

run_suite unit-kernels        ./build/core/test_kernels
run_suite unit-vector         ./build/core/test_vector
run_suite unit-schema         ./build/core/test_schema
run_suite unit-hnsw           ./build/core/test_hnsw 10000
run_suite unit-static         ./build/core/test_static
run_suite asan-unit-kernels   ./build/asan-core/test_kernels
run_suite asan-unit-vector    ./build/asan-core/test_vector
run_suite asan-unit-schema    ./build/asan-core/test_schema
run_suite asan-unit-hnsw      ./build/asan-core/test_hnsw 2000
run_suite asan-unit-static    ./build/asan-core/test_static
run_suite sql                 $PY tests/test_sql.py ./vectordb
# Python itself is not built with ASan: preload the runtime, and leave leak
# checking to the C unit tests (CPython keeps memory until exit).
run_suite asan-sql env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
          $PY tests/test_sql.py ./build/asan-so/vectordb
run_suite vtab                $PY tests/test_vtab.py ./vectordb
run_suite asan-vtab env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
          $PY tests/test_vtab.py ./build/asan-so/vectordb
run_suite hnsw-table          $PY tests/test_hnsw_table.py ./vectordb 10000
run_suite asan-hnsw-table env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
          $PY tests/test_hnsw_table.py ./build/asan-so/vectordb 2000
run_suite differential        $PY tests/test_differential.py ./vectordb $SQLITE_VEC
# The same SQL-level suites inside a newer SQLite than the system's.
if [ -n "${SQLITE_NEWER:-}" ]; then
  run_suite sql-newer-sqlite  env LD_PRELOAD="$PWD/$SQLITE_NEWER" $PY tests/test_sql.py ./vectordb
  run_suite vtab-newer-sqlite env LD_PRELOAD="$PWD/$SQLITE_NEWER" $PY tests/test_vtab.py ./vectordb
  run_suite hnsw-table-newer-sqlite env LD_PRELOAD="$PWD/$SQLITE_NEWER" $PY tests/test_hnsw_table.py ./vectordb 3000
fi
# Further suites, each in its own fragment that calls run_suite.
for fragment in tests/suites/*.sh; do
  [ -f "$fragment" ] && . "./$fragment"
done

run_end=$(now); mark_cpu
echo "suites took $(elapsed "$run_start" "$run_end") s, cpu $(elapsed "$run_cpu0" "$(cpu_mark)") s; load average at end: $(loadavg)"
echo "failed suites:${failed_suites:- none}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
