# make longtest: the suites that `make test` runs at reduced sizes, at the
# sizes make test used before it ran in under 6 minutes (about 4 min more of
# CPU): the indexed-table suite on 10,000 rows, 2,000 under ASan+UBSan and
# 3,000 in the newer SQLite; the sanitizer fault runs and the allocation
# failure runs at half make test's strides. Each command ends with its own
# "N passed, N failed"; the first failure stops the target.
# (`make faulttest`, `crashtest`, `soak`, `valgrind`, `fuzz` and
# `clustertest` are the longer forms of the other reliability suites.)
LONGTEST_ENV = UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: longtest
longtest: deps
	@$(MAKE) --no-print-directory vectordb.so build/asan-so/vectordb.so $(SQLITE_NEWER) $(FAULT_TESTS)
	$(PYTHON) tests/test_hnsw_table.py ./vectordb 10000
	$(LONGTEST_ENV) LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
	  $(PYTHON) tests/test_hnsw_table.py ./build/asan-so/vectordb 2000
	LD_PRELOAD=$(CURDIR)/$(SQLITE_NEWER) $(PYTHON) tests/test_hnsw_table.py ./vectordb 3000
	$(LONGTEST_ENV) ./build/asan-core/test_faults short 6
	./build/core/test_oom short 10
	$(LONGTEST_ENV) ./build/asan-core/test_oom short 40
