# Reliability: crash recovery (tests/test_crash.py: a workload killed with
# SIGKILL again and again), a concurrency soak (tests/test_soak.c: readers
# and a writer on one database, WAL and rollback journal, also under
# ThreadSanitizer) and valgrind memcheck on a subset of the C tests.
#
#   make test         short forms (suites in tests/suites/reliability.sh)
#   make crashtest    CRASHES crashes per journal mode (default 250: 500 in all)
#   make soak         the soak test with SOAK_GENERATIONS commits and SOAK_READS
#                     queries per reader, then under ThreadSanitizer with
#                     SOAK_TSAN_GENERATIONS commits
#   make valgrind     memcheck on every C unit test (test_hnsw at 2,000 rows,
#                     the fewest it reads: tens of minutes) and a longer soak

CRASHES ?= 250
SOAK_GENERATIONS ?= 5000
SOAK_READS ?= 20000
SOAK_TSAN_GENERATIONS ?= 1000

# A fifth object set, for ThreadSanitizer: the same sources with
# -fsanitize=thread -DSQLITE_CORE (TSan cannot be mixed with ASan).
TSAN = -fsanitize=thread -fno-omit-frame-pointer

build/tsan-core/%.o: src/%.c $(HEADERS) | build/tsan-core
	$(CC) $(CFLAGS_COMMON) -O1 $(TSAN) -DSQLITE_CORE $(CFLAGS_$*) $(CFLAGS) -c $< -o $@
build/tsan-core/kernels_%.o: src/vdb_kernels_simd.c $(HEADERS) | build/tsan-core
	$(CC) $(CFLAGS_COMMON) -O1 $(TSAN) -DSQLITE_CORE $(KFLAGS_$*) $(CFLAGS) -c $< -o $@
build/tsan-core:
	mkdir -p $@

build/tsan-core/test_soak: tests/test_soak.c tests/testutil.h $(call objs,tsan-core)
	$(CC) $(CFLAGS_COMMON) -O1 $(TSAN) -DSQLITE_CORE -Itests -o $@ $< $(call objs,tsan-core) -lsqlite3 -lm -lpthread

# build/core/test_soak comes from the Makefile's build/core/% rule.
RELIABILITY_TESTS = build/core/test_soak build/tsan-core/test_soak
EXTRA_TEST_DEPS += $(RELIABILITY_TESTS)

.PHONY: crashtest soak
crashtest:
	@$(MAKE) --no-print-directory vectordb.so
	nice -n 19 $(PYTHON) tests/test_crash.py ./vectordb $(CRASHES)

soak:
	@$(MAKE) --no-print-directory $(RELIABILITY_TESTS)
	nice -n 19 ./build/core/test_soak $(SOAK_GENERATIONS) $(SOAK_READS) 4
	TSAN_OPTIONS=halt_on_error=1 nice -n 19 ./build/tsan-core/test_soak $(SOAK_TSAN_GENERATIONS) $$(( $(SOAK_READS) / 10 )) 4

# Memcheck: errors and definite or possible leaks fail the run. Fair
# scheduling, or the soak's readers can starve its writer (valgrind runs one
# thread at a time).
VALGRIND = valgrind -q --error-exitcode=1 --leak-check=full --fair-sched=yes

.PHONY: valgrind
valgrind:
	@$(MAKE) --no-print-directory $(addprefix build/core/,$(UNIT_TESTS)) build/core/test_soak
	nice -n 19 $(VALGRIND) ./build/core/test_kernels
	nice -n 19 $(VALGRIND) ./build/core/test_vector
	nice -n 19 $(VALGRIND) ./build/core/test_schema
	nice -n 19 $(VALGRIND) ./build/core/test_static
	nice -n 19 $(VALGRIND) ./build/core/test_hnsw 2000
	nice -n 19 $(VALGRIND) ./build/core/test_soak 40 100 2 1000
