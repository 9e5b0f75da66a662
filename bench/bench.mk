# The benchmark harness (bench/run.py) and its drivers. Included by the
# Makefile. Everything here is opt-in except the smoke test's drivers,
# which `make test` builds so the harness cannot rot.
#
#   make bench-data    data sets and exact ground truth, cached in .cache/bench
#   make bench-quick   Fashion-MNIST, every system, 4 ef values (~5 min)
#   make bench         every data set and system (~30 min; peers' builds are
#                      cached by input checksum, so re-runs are shorter)
#   make bench-serving readers while another process commits, on the three
#                      data sets (bench/serving.py; SERVING_ARGS, e.g.
#                      --readers 2 --baseline OLD/vectordb); builds its
#                      tables once (the 1M one takes about half an hour)
#   make bench-shared  8 connections' memory, a new connection's first
#                      query, 2 threads (bench/shared.py; SHARED_ARGS)
# BENCH_ARGS passes further options to bench/run.py, e.g. --datasets
# fashion-mnist,cosine-200k or --base my.fvecs --queries q.fvecs --metric cosine;
# --rebuild builds every system afresh, so build times come from one run.

BENCH_DRIVERS = build/bench/groundtruth build/bench/sqlite_run build/bench/hnswlib_run build/bench/faiss_run
BENCH_CFLAGS  = $(CSTD) $(WARN) $(OPT) -Isrc -Ibench

build/bench:
	mkdir -p $@

build/bench/groundtruth: bench/groundtruth.c bench/driver.h build/core/vdb_kernels.o $(addprefix build/core/kernels_,$(addsuffix .o,$(KLEVELS))) | build/bench
	$(CC) $(BENCH_CFLAGS) -o $@ $< build/core/vdb_kernels.o $(addprefix build/core/kernels_,$(addsuffix .o,$(KLEVELS))) -lm -lpthread

build/bench/sqlite_run: bench/sqlite_run.c bench/driver.h | build/bench
	$(CC) $(BENCH_CFLAGS) -o $@ $< -lsqlite3 -lpthread

# The peers get their best compile: -O3 and every instruction set this CPU has.
build/bench/hnswlib_run: bench/hnswlib_run.cpp bench/driver.h | build/bench
	$(CXX) -O3 -march=native -std=c++17 -Wall -Wextra -Ibench -o $@ $< -lpthread

build/bench/faiss_run: bench/faiss_run.cpp bench/driver.h | build/bench
	$(CXX) -O3 -march=native -std=c++17 -Wall -Wextra -fopenmp -Ibench -o $@ $< -lfaiss -lblas -llapack -lpthread

bench-drivers: vectordb.so $(SQLITE_VEC) $(BENCH_DRIVERS)

bench-data: deps
	@$(MAKE) --no-print-directory build/bench/groundtruth
	$(PYTHON) -c 'import sys; sys.path.insert(0, "bench"); import datasets; [datasets.prepare(n, ".cache/bench") for n in ("fashion-mnist", "cosine-200k", "mixture-1m")]'

bench-quick: deps
	@$(MAKE) --no-print-directory bench-drivers
	$(PYTHON) bench/run.py --quick $(BENCH_ARGS)

bench: deps
	@$(MAKE) --no-print-directory bench-drivers
	$(PYTHON) bench/run.py $(BENCH_ARGS)

SERVING_DATASETS ?= fashion-mnist cosine-200k mixture-1m
bench-serving: deps vectordb.so
	@$(MAKE) --no-print-directory build/bench/groundtruth
	for d in $(SERVING_DATASETS); do $(PYTHON) bench/serving.py --dataset $$d $(SERVING_ARGS) || exit 1; done

bench-shared: deps vectordb.so
	@$(MAKE) --no-print-directory build/bench/groundtruth
	$(PYTHON) bench/shared.py $(SHARED_ARGS)

EXTRA_TEST_DEPS += bench-drivers
.PHONY: bench bench-quick bench-data bench-drivers bench-serving bench-shared
