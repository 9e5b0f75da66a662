# README.md's examples, run as printed (tests/test_readme.py): the SQL and
# Python blocks, and every ```sh block as its <!-- readme-test: ... -->
# comment says (run in a scratch directory, including a 3-node cluster on
# free loopback ports; names-only checks for the long-running ones); its C
# examples also run in the install suite, the packages' in theirs.
run_suite readme $PY tests/test_readme.py ./vectordb
