#!/bin/sh
# Runs bindings/node's tests with node --test (TAP reporter) and turns its
# summary ("# pass N", "# fail N", "# cancelled N") into the line
# scripts/run-tests.sh sums: "N passed, N failed".
set -u
cd "$(dirname "$0")/../bindings/node" || exit 1
out=$(node --test --test-reporter=tap test/*.test.js 2>&1)
status=$?
printf '%s\n' "$out"
count() { printf '%s\n' "$out" | sed -n "s/^# $1 \([0-9][0-9]*\)\$/\1/p" | tail -n 1; }
pass=$(count pass); fail=$(count fail); cancelled=$(count cancelled)
if [ -z "$pass" ] || [ -z "$fail" ]; then
  echo "node --test printed no summary (exit $status)"
  echo "0 passed, 1 failed"
  exit 1
fi
fail=$((fail + ${cancelled:-0}))
[ "$status" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
