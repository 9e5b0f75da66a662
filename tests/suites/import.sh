# vec_npy_each: .npy files in BLOBs (tests/test_import.py), also under ASan.
run_suite import     $PY tests/test_import.py ./vectordb
run_suite asan-import env LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 \
          $PY tests/test_import.py ./build/asan-so/vectordb
