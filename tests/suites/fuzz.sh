# Sourced by scripts/run-tests.sh (which defines run_suite, PY, ASAN_LIB).
#
# The bad-input catalogue, plain, under ASan+UBSan, and in the newer SQLite;
# then the short form of every libFuzzer target (tests/fuzz/run.sh): its
# committed corpus and regression inputs, and FUZZ_SHORT_SECONDS (default 6)
# of fuzzing. `make fuzz` runs the targets longer.
run_suite bad-inputs        $PY tests/test_bad_inputs.py ./vectordb
run_suite asan-bad-inputs   env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
                            $PY tests/test_bad_inputs.py ./build/asan-so/vectordb
if [ -n "${SQLITE_NEWER:-}" ]; then
  run_suite bad-inputs-newer-sqlite env LD_PRELOAD="$PWD/$SQLITE_NEWER" \
                            $PY tests/test_bad_inputs.py ./vectordb
fi
for fuzz_src in tests/fuzz/fuzz_*.c; do
  fuzz_target=$(basename "$fuzz_src" .c)
  run_suite "$fuzz_target" sh tests/fuzz/run.sh "$fuzz_target" "${FUZZ_SHORT_SECONDS:-6}"
done
