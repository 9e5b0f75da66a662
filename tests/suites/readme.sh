# README.md's SQL and Python examples, run as printed (tests/test_readme.py);
# its C examples run in the install suite, the packages' in theirs.
run_suite readme $PY tests/test_readme.py ./vectordb
