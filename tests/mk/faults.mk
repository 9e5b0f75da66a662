# Fault injection under an HNSW-indexed table: I/O errors and power loss
# through a VFS shim (tests/faultvfs.c, tests/test_faults.c), allocation
# failures through a countdown allocator (tests/test_oom.c); the scenarios
# and checks they share are in tests/faultscen.h.
#
#   make test        runs the short forms (tests/suites/faults.sh)
#   make faulttest   runs the long forms: every fault point, a tiny page
#                    cache too, a full disk, hundreds of power losses,
#                    allocation failures with lookaside off; both builds

FAULT_DEPS = tests/faultscen.h tests/faultvfs.h tests/testutil.h src/vectordb.h

build/core/test_faults: tests/test_faults.c tests/faultvfs.c $(FAULT_DEPS) $(call objs,core)
	$(CC) $(CFLAGS_COMMON) $(OPT) -DSQLITE_CORE -Itests -o $@ tests/test_faults.c tests/faultvfs.c $(call objs,core) -lsqlite3 -lm -lpthread
build/asan-core/test_faults: tests/test_faults.c tests/faultvfs.c $(FAULT_DEPS) $(call objs,asan-core)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -DSQLITE_CORE -Itests -o $@ tests/test_faults.c tests/faultvfs.c $(call objs,asan-core) -lsqlite3 -lm -lpthread
build/core/test_oom: tests/test_oom.c tests/faultvfs.c $(FAULT_DEPS) $(call objs,core)
	$(CC) $(CFLAGS_COMMON) $(OPT) -DSQLITE_CORE -Itests -o $@ tests/test_oom.c tests/faultvfs.c $(call objs,core) -lsqlite3 -lm -lpthread
build/asan-core/test_oom: tests/test_oom.c tests/faultvfs.c $(FAULT_DEPS) $(call objs,asan-core)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -DSQLITE_CORE -Itests -o $@ tests/test_oom.c tests/faultvfs.c $(call objs,asan-core) -lsqlite3 -lm -lpthread

FAULT_TESTS = build/core/test_faults build/asan-core/test_faults build/core/test_oom build/asan-core/test_oom
EXTRA_TEST_DEPS += $(FAULT_TESTS)

.PHONY: faulttest
faulttest:
	@$(MAKE) --no-print-directory $(FAULT_TESTS)
	./build/core/test_faults long
	./build/core/test_oom long
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./build/asan-core/test_faults long 3
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./build/asan-core/test_oom long 7
