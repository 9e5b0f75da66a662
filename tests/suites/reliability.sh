# Sourced by scripts/run-tests.sh: the short forms of the reliability suites
# (build rules and the long forms in tests/mk/reliability.mk).

# 12 SIGKILLs per journal mode (WAL, DELETE), each followed by recovery
# checks, including recall within 0.01 of a fresh build of the same rows;
# `make crashtest` runs 500.
run_suite crash $PY tests/test_crash.py ./vectordb 12

# One writer and 1, 2, then 3 reader threads on one WAL database (the last
# with 1 MiB graph caches), then 2 readers in rollback-journal mode: 60
# commits each time, every read checked against the generation it saw;
# then the same under ThreadSanitizer with 40 commits on 1,000 rows.
# `make soak` runs them longer.
run_suite soak      ./build/core/test_soak 60 100 3
run_suite tsan-soak env TSAN_OPTIONS=halt_on_error=1 ./build/tsan-core/test_soak 40 50 3 1000

# valgrind memcheck (errors and leaks fail) on the quick C tests and a small
# soak; `make valgrind` adds test_kernels, test_hnsw and a longer soak.
# --fair-sched=yes: valgrind runs one thread at a time, and its default lock
# can starve the soak's writer while the readers wait for it to finish.
VALGRIND="valgrind -q --error-exitcode=1 --leak-check=full --fair-sched=yes"
run_suite valgrind-vector $VALGRIND ./build/core/test_vector
run_suite valgrind-schema $VALGRIND ./build/core/test_schema
run_suite valgrind-static $VALGRIND ./build/core/test_static
run_suite valgrind-soak   $VALGRIND ./build/core/test_soak 12 15 2 300
