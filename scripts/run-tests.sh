#!/bin/bash
# Run every test suite, print each suite's own closing line, and end with
# the total "N passed, N failed". Exits non-zero if any suite failed or
# could not report.
#
# Each suite prints "N passed, N failed" as its last such line; a suite
# that crashes before printing it counts as one failure.
#
# TEST_JOBS suites (default: the number of cores) run at once, each with
# its output in build/test-logs/NAME.log; the results are printed in the
# order the suites are listed below, whatever order they finish in, so the
# output reads the same from run to run. TEST_JOBS=1 runs them one by one.
set -u
PY=${PYTHON:-/usr/bin/python3}
ASAN_LIB=$(${CC:-cc} -print-file-name=libasan.so)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
SQLITE_VEC=.cache/sqlite-vec-0.1.9/vec0
TEST_JOBS=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
case $TEST_JOBS in ''|*[!0-9]*|0) echo "TEST_JOBS must be a positive integer, not '$TEST_JOBS'"; exit 2 ;; esac

# Each suite's wall time and the CPU time (user+sys) of its processes are
# printed after its result: the machine may be shared, so wall time alone
# says little. A suite runs in its own subshell, whose `times` then counts
# that suite's processes only.
logs=build/test-logs
rm -rf "$logs"
mkdir -p "$logs"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b-a }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null; }
echo "load average at start: $(loadavg); $TEST_JOBS suites at a time"
run_start=$(now)

suites=()        # names in the order listed
next_print=0     # index of the first suite whose result is not printed yet
running=0
total_pass=0; total_fail=0; total_cpu=0; failed_suites=""

# Runs in the suite's subshell: the command, then its status, wall time and
# CPU time (the second line of `times`: children's user and system time).
suite_job() {
  name=$1; shift
  start=$(now)
  "$@" >"$logs/$name.log" 2>&1
  status=$?
  end=$(now)
  times >"$logs/$name.times"   # not in a pipe: that would be another subshell's
  cpu=$(awk 'NR==2 { split($1,u,"m"); split($2,s,"m"); printf "%.1f", u[1]*60+u[2]+s[1]*60+s[2] }' "$logs/$name.times")
  echo "$status $(elapsed "$start" "$end") $cpu" >"$logs/$name.done.tmp"
  mv "$logs/$name.done.tmp" "$logs/$name.done"
}

# Print the results of finished suites, in listed order, up to the first
# one still running.
report_finished() {
  while [ "$next_print" -lt "${#suites[@]}" ] && [ -f "$logs/${suites[$next_print]}.done" ]; do
    report_one "${suites[$next_print]}"
    next_print=$((next_print + 1))
  done
}

report_one() {
  name=$1; log=$logs/$name.log
  read -r status wall cpu <"$logs/$name.done"
  took="$wall s, cpu $cpu s"
  total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN { printf "%.1f", a+b }')
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

# Start a suite once fewer than TEST_JOBS are running.
run_suite() {
  for n in "${suites[@]}"; do
    [ "$n" = "$1" ] && { echo "run-tests.sh: suite name '$1' used twice"; exit 2; }
  done
  while [ "$running" -ge "$TEST_JOBS" ]; do
    wait -n
    running=$((running - 1))
    report_finished
  done
  suites+=("$1")
  suite_job "$@" &
  running=$((running + 1))
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
# The indexed-table suite on 5,000, 1,000 and (newer SQLite) 2,000 rows;
# `make longtest` runs it on 10,000, 2,000 and 3,000 (tests/mk/longtest.mk).
run_suite hnsw-table          $PY tests/test_hnsw_table.py ./vectordb 5000
run_suite asan-hnsw-table env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
          $PY tests/test_hnsw_table.py ./build/asan-so/vectordb 1000
# The process-wide shared index: sharing, snapshots, private writes,
# rollbacks, a rewritten log, threads.
run_suite shared              $PY tests/test_shared.py ./vectordb
run_suite asan-shared env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
          $PY tests/test_shared.py ./build/asan-so/vectordb 1000
run_suite differential        $PY tests/test_differential.py ./vectordb $SQLITE_VEC
# The same SQL-level suites inside a newer SQLite than the system's.
if [ -n "${SQLITE_NEWER:-}" ]; then
  run_suite sql-newer-sqlite  env LD_PRELOAD="$PWD/$SQLITE_NEWER" $PY tests/test_sql.py ./vectordb
  run_suite vtab-newer-sqlite env LD_PRELOAD="$PWD/$SQLITE_NEWER" $PY tests/test_vtab.py ./vectordb
  run_suite hnsw-table-newer-sqlite env LD_PRELOAD="$PWD/$SQLITE_NEWER" $PY tests/test_hnsw_table.py ./vectordb 2000
fi
# Further suites, each in its own fragment that calls run_suite.
for fragment in tests/suites/*.sh; do
  [ -f "$fragment" ] && . "./$fragment"
done

wait
# A suite whose subshell died without writing its result counts as failed.
for name in "${suites[@]}"; do
  [ -f "$logs/$name.done" ] || echo "1 0 0" >"$logs/$name.done"
done
report_finished
echo "suites took $(elapsed "$run_start" "$(now)") s, cpu $total_cpu s; load average at end: $(loadavg)"
echo "failed suites:${failed_suites:- none}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
