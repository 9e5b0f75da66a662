# The Node package (bindings/node) with better-sqlite3 12.11.1, through
# node --test (tests/run-node-tests.sh; build rules in tests/mk/node.mk).
run_suite node-package sh tests/run-node-tests.sh
