# The benchmark harness on a tiny data set, every system (bench/smoke_test.py).
run_suite bench-smoke $PY bench/smoke_test.py
