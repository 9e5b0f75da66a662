# The vectordb command-line tool (tests/test_cli.py): every command, its
# errors and exit codes, resuming an import after SIGINT and SIGKILL, progress.
run_suite cli $PY tests/test_cli.py build/bin/vectordb ./vectordb
