#!/bin/sh
# Run one libFuzzer target: replay its committed corpus (one test) and each
# regression input (one test each), then fuzz for SECONDS (one test).
# Ends with "N passed, N failed", the line scripts/run-tests.sh sums.
#
#   sh tests/fuzz/run.sh TARGET SECONDS [short|long]
#
# short (the default, for `make test`) fuzzes from a fresh working corpus
# seeded by the committed one; long (`make fuzz`) keeps its working corpus
# in build/fuzz/work/TARGET between runs. Crash inputs are written to
# build/fuzz/artifacts/TARGET/; a fixed one belongs in
# tests/fuzz/regressions/TARGET/.
set -u
target=$1
seconds=${2:-10}
mode=${3:-short}
bin=build/fuzz/$target
corpus=tests/fuzz/corpus/$target
regress=tests/fuzz/regressions/$target
artifacts=build/fuzz/artifacts/$target
logs=build/fuzz/logs/$target
if [ "$mode" = long ]; then work=build/fuzz/work/$target; else work=build/fuzz/short/$target; fi

# Per-target limits: a hang or a runaway allocation is a finding too.
case $target in
  fuzz_vector) opts="-max_len=8192 -timeout=10 -rss_limit_mb=1024" ;;
  fuzz_import) opts="-max_len=16384 -timeout=10 -rss_limit_mb=1024" ;;
  fuzz_schema) opts="-max_len=2048 -timeout=10 -rss_limit_mb=1024" ;;
  fuzz_sql)    opts="-max_len=1200 -len_control=0 -timeout=20 -rss_limit_mb=1536" ;;
  *)           opts="-max_len=65536 -timeout=20 -rss_limit_mb=1536" ;;
esac
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pass=0; fail=0
mkdir -p "$artifacts" "$logs"
ok(){ pass=$((pass + 1)); echo "ok   $*"; }
bad(){ fail=$((fail + 1)); echo "FAIL $*"; }

if [ ! -x "$bin" ]; then
  bad "$bin is not built (make $bin)"
  echo "$pass passed, $fail failed"
  exit 1
fi

# The committed corpus, every file once, in one process.
files=$(find "$corpus" -type f 2>/dev/null | sort)
if [ -z "$files" ]; then
  bad "$target: no seed corpus in $corpus"
elif "$bin" $opts $files >"$logs/corpus.log" 2>&1; then
  ok "$target: corpus replay ($(echo "$files" | wc -l) inputs)"
else
  bad "$target: corpus replay; log $logs/corpus.log"
  grep -E 'ERROR|runtime error|assertion|Running:' "$logs/corpus.log" | tail -n 5
fi

# Every regression input on its own, so each fixed bug is a named test.
for f in $(find "$regress" -type f 2>/dev/null | sort); do
  name=$(basename "$f")
  if "$bin" $opts "$f" >"$logs/regress-$name.log" 2>&1; then
    ok "$target: regression $name"
  else
    bad "$target: regression $name; log $logs/regress-$name.log"
    grep -E 'ERROR|runtime error|assertion' "$logs/regress-$name.log" | head -n 5
  fi
done

# Fuzzing proper.
[ "$mode" = long ] || rm -rf "$work"
mkdir -p "$work"
seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
if "$bin" $opts -seed="$seed" -max_total_time="$seconds" -print_final_stats=1 \
     -artifact_prefix="$artifacts/" "$work" "$corpus" >"$logs/fuzz.log" 2>&1; then
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/fuzz.log")
  ok "$target: fuzzed ${seconds}s, seed $seed, ${execs:-?} executions"
else
  bad "$target: fuzzing found a failure (seed $seed); log $logs/fuzz.log"
  grep -E 'ERROR|runtime error|assertion|Test unit written|SUMMARY' "$logs/fuzz.log" | head -n 8
fi
[ "$mode" = long ] || rm -rf "$work"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
