# vectordb: a vector database inside SQLite.
#
#   make            vectordb.so (loadable) and libvectordb.a (static, SQLITE_CORE)
#   make deps       install missing Debian packages and the sqlite-vec peer
#   make test       everything above, then every test suite (ends "N passed, N failed");
#                   TEST_JOBS build jobs and suites at once (default: the cores)
#   make longtest   the suites make test runs at reduced sizes, at full size
#   make demo       nearest neighbours on Fashion-MNIST in the sqlite3 shell
#   make bench-kernels   SIMD vs scalar kernel micro-benchmark
#   make bench-quick     the harness on Fashion-MNIST, all systems (~5 min)
#   make bench           the harness on every data set, all systems (~30 min)
#   make bench-data      prepare the data sets and their ground truth only
#   make install         vectordb.so, libvectordb.a, vectordb.h and vectordb.pc under
#                        $(DESTDIR)$(PREFIX) (PREFIX=/usr/local); make uninstall removes them
#   make amalgamation    build/amalgamation/vectordb.c + vectordb.h: one C file to
#                        compile into an application (cc app.c vectordb.c -lsqlite3 -lm)
#   build/bin/vectordb   the command-line tool (import, stats, check, query), built by
#                        make; installed as $(PREFIX)/bin/vectordb
#
# Four object sets are built from the same sources:
#   build/so         loadable extension (no -lsqlite3, only the entry point exported)
#   build/core       -DSQLITE_CORE: static library and C unit tests
#   build/asan-so    loadable extension under ASan+UBSan, for the SQL tests
#   build/asan-core  unit tests under ASan+UBSan

# The first rule below is a directory rule made by an eval: name the goal.
.DEFAULT_GOAL := all

CC      ?= cc
PYTHON  ?= /usr/bin/python3
OPT     ?= -O2
WARN     = -Wall -Wextra
CSTD     = -std=c11 -D_DEFAULT_SOURCE
CFLAGS_COMMON = $(CSTD) $(WARN) -g -fPIC -fvisibility=hidden -Isrc
SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

ARCH := $(shell uname -m)

# Plain C sources and the one SIMD source compiled once per level.
SRCS     = vdb_kernels vdb_vector vdb_func vdb_each vdb_import vdb_schema vdb_store vdb_knn vdb_index \
           vdb_index_flat vdb_hnsw vdb_quant vdb_hnsw_records vdb_hnsw_shared vdb_index_hnsw vdb_vtab vdb_main
ifeq ($(ARCH),x86_64)
KLEVELS  = base avx2 avx512 avx512vnni
else
KLEVELS  = base
endif
KFLAGS_base   = -DVDB_KERNEL_TABLE=vdbKernelsBase -DVDB_KERNEL_NAME='"base"'
KFLAGS_avx2   = -DVDB_KERNEL_TABLE=vdbKernelsAvx2 -DVDB_KERNEL_NAME='"avx2"' \
                -mavx2 -mfma -mpopcnt
KFLAGS_avx512 = -DVDB_KERNEL_TABLE=vdbKernelsAvx512 -DVDB_KERNEL_NAME='"avx512"' \
                -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mpopcnt
KFLAGS_avx512vnni = -DVDB_KERNEL_TABLE=vdbKernelsAvx512Vnni -DVDB_KERNEL_NAME='"avx512vnni"' \
                -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vnni -mavx2 -mfma -mpopcnt
# The scalar reference must stay scalar to be a fair baseline.
CFLAGS_vdb_kernels = -fno-tree-vectorize
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CFLAGS_vdb_func = -DVDB_COMMIT='"$(GIT_COMMIT)"' -DVDB_BUILD_FLAGS='"$(CC) $(OPT) simd:$(KLEVELS)"'

HEADERS = $(wildcard src/*.h)

VARIANTS = so core asan-so asan-core
VFLAGS_so        = $(OPT)
VFLAGS_core      = $(OPT) -DSQLITE_CORE
VFLAGS_asan-so   = -O1 $(SAN)
VFLAGS_asan-core = -O1 $(SAN) -DSQLITE_CORE

objs = $(addprefix build/$(1)/,$(addsuffix .o,$(SRCS)) $(addprefix kernels_,$(addsuffix .o,$(KLEVELS))))

define variant_rules
build/$(1)/%.o: src/%.c $(HEADERS) | build/$(1)
	$$(CC) $$(CFLAGS_COMMON) $$(VFLAGS_$(1)) $$(CFLAGS_$$*) $$(CFLAGS) -c $$< -o $$@
build/$(1)/kernels_%.o: src/vdb_kernels_simd.c $(HEADERS) | build/$(1)
	$$(CC) $$(CFLAGS_COMMON) $$(VFLAGS_$(1)) $$(KFLAGS_$$*) $$(CFLAGS) -c $$< -o $$@
build/$(1):
	mkdir -p $$@
endef
$(foreach v,$(VARIANTS),$(eval $(call variant_rules,$(v))))

# Objects are built by pattern rules; keep them between runs.
.SECONDARY:

.PHONY: all deps test demo bench-kernels clean unit-tests
all: vectordb.so libvectordb.a build/bin/vectordb

vectordb.so: $(call objs,so)
	$(CC) -shared -o $@ $^ -lm -Wl,-z,defs

libvectordb.a: $(call objs,core)
	rm -f $@
	ar rcs $@ $^

# The command-line tool, linked with the static library and the system
# SQLite. It lives under build/bin because a file named `vectordb` at the
# root would be what the sqlite3 shell's `.load ./vectordb` opens first.
VDB_PKG_VERSION := $(shell sed -n 's/^\#define VDB_VERSION "\(.*\)"/\1/p' src/vdb_func.h)
build/bin/vectordb: cli/vectordb_cli.c src/vectordb.h libvectordb.a | build/bin
	$(CC) $(CSTD) $(WARN) -g $(OPT) -Isrc -DVECTORDB_CLI_VERSION='"$(VDB_PKG_VERSION) ($(GIT_COMMIT))"' \
	  -o $@ $< libvectordb.a -lsqlite3 -lm
build/bin:
	mkdir -p $@

build/asan-so/vectordb.so: $(call objs,asan-so)
	$(CC) $(SAN) -shared -o $@ $^ -lm

# ---- tests ---------------------------------------------------------------
UNIT_TESTS = test_kernels test_vector test_schema test_hnsw test_static
build/core/test_static: tests/test_static.c tests/testutil.h libvectordb.a
	$(CC) $(CFLAGS_COMMON) $(OPT) -Itests -o $@ $< libvectordb.a -lsqlite3 -lm
build/core/%: tests/%.c tests/testutil.h $(call objs,core)
	$(CC) $(CFLAGS_COMMON) $(OPT) -DSQLITE_CORE -Itests -o $@ $< $(call objs,core) -lsqlite3 -lm -lpthread
build/asan-core/%: tests/%.c tests/testutil.h $(call objs,asan-core)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -DSQLITE_CORE -Itests -o $@ $< $(call objs,asan-core) -lsqlite3 -lm -lpthread

unit-tests: $(addprefix build/core/,$(UNIT_TESTS)) $(addprefix build/asan-core/,$(UNIT_TESTS))

SQLITE_VEC_VERSION = 0.1.9
SQLITE_VEC = .cache/sqlite-vec-$(SQLITE_VEC_VERSION)/vec0.so

# A newer SQLite (3.53.2, from better-sqlite3's sources on npm) to run the
# SQL tests in as well as the system's 3.40.
BETTER_SQLITE3_VERSION = 12.11.1
SQLITE_NEWER = .cache/sqlite-newer-$(BETTER_SQLITE3_VERSION)/libsqlite3.so

deps:
	@sh scripts/deps.sh

$(SQLITE_VEC):
	@sh scripts/fetch-sqlite-vec.sh $(SQLITE_VEC_VERSION) $(dir $@)

$(SQLITE_NEWER):
	@sh scripts/fetch-sqlite-newer.sh $(BETTER_SQLITE3_VERSION) $(dir $@)

# The build for the tests runs TEST_JOBS jobs at once (default: the number
# of cores), each job's output printed whole when it ends; the suites then
# run TEST_JOBS at a time too (scripts/run-tests.sh).
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
export TEST_JOBS

test: deps
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target all unit-tests build/asan-so/vectordb.so \
	  $(SQLITE_VEC) $(SQLITE_NEWER) $(EXTRA_TEST_DEPS) || exit 1; \
	echo "build for the tests took $$(( $$(date +%s) - start )) s"
	@SQLITE_NEWER=$(SQLITE_NEWER) bash scripts/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

build/bench_kernels: bench/bench_kernels.c $(call objs,core)
	$(CC) $(CFLAGS_COMMON) $(OPT) -DSQLITE_CORE -o $@ $< $(call objs,core) -lsqlite3 -lm

bench-kernels: deps
	@$(MAKE) --no-print-directory build/bench_kernels
	./build/bench_kernels

# The benchmark harness (bench-data, bench-quick, bench): see bench/bench.mk.
-include bench/bench.mk
# The replicated node on dqlite (vectordb-node, clustertest): see cluster/cluster.mk.
-include cluster/cluster.mk
# Test suites that bring their own build rules (fault injection, fuzzing, ...).
-include $(wildcard tests/mk/*.mk)

# ---- install ---------------------------------------------------------------
# The loadable extension goes next to the static library, as
# $(LIBDIR)/vectordb.so (`pkg-config --variable=loadable vectordb` prints the
# path to give sqlite3's .load, without the suffix).
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BINDIR     ?= $(PREFIX)/bin
INSTALLED = $(LIBDIR)/vectordb.so $(LIBDIR)/libvectordb.a $(INCLUDEDIR)/vectordb.h \
            $(PKGCONFIGDIR)/vectordb.pc $(BINDIR)/vectordb

build/vectordb.pc: vectordb.pc.in src/vdb_func.h FORCE | build
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VDB_PKG_VERSION)|' $< >$@

build:
	mkdir -p $@

.PHONY: install uninstall amalgamation FORCE
FORCE:
install: vectordb.so libvectordb.a build/vectordb.pc build/bin/vectordb
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 755 vectordb.so $(DESTDIR)$(LIBDIR)/vectordb.so
	install -m 644 libvectordb.a $(DESTDIR)$(LIBDIR)/libvectordb.a
	install -m 644 src/vectordb.h $(DESTDIR)$(INCLUDEDIR)/vectordb.h
	install -m 644 build/vectordb.pc $(DESTDIR)$(PKGCONFIGDIR)/vectordb.pc
	install -m 755 build/bin/vectordb $(DESTDIR)$(BINDIR)/vectordb

# Removes exactly the files install wrote. Directories stay: install -d
# cannot tell whether it created them or they were there (/usr/local/lib).
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

# ---- amalgamation ------------------------------------------------------------
# scripts/amalgamate.py concatenates SRCS in order, inlining each internal
# header once, and the SIMD source once per level of KLEVELS with that
# level's KFLAGS turned into #defines and a target pragma; simde's headers
# are inlined too, so only a C compiler and SQLite are needed.
SIMDE_INCLUDE ?= /usr/include
amalgamation: build/amalgamation/vectordb.c

build/amalgamation/vectordb.c: scripts/amalgamate.py $(addprefix src/,$(addsuffix .c,$(SRCS))) \
                               src/vdb_kernels_simd.c $(HEADERS) Makefile
	$(PYTHON) scripts/amalgamate.py --out $(dir $@) --srcdir src --simde $(SIMDE_INCLUDE) \
	  --build-flags '"amalgamation simd:$(KLEVELS)"' \
	  $(foreach s,$(SRCS),--src $(s) $(CFLAGS_$(s))) \
	  $(foreach l,$(KLEVELS),--simd vdb_kernels_simd $(KFLAGS_$(l)))

clean:
	rm -rf build vectordb.so libvectordb.a
