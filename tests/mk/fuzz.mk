# libFuzzer targets (tests/fuzz/), built with clang under ASan and UBSan
# from the same sources as the library (-DSQLITE_CORE, the system SQLite).
#
#   make fuzz                    every target for FUZZ_SECONDS (default 300) each
#   make fuzz FUZZ_TARGETS=fuzz_sql FUZZ_SECONDS=600
#
# `make test` builds the targets and tests/suites/fuzz.sh runs the short
# form: every committed corpus and regression input, then a few seconds of
# fuzzing per target. Working corpora and crash artifacts stay in build/fuzz.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_ALL      = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = $(CSTD) $(WARN) -g -O1 -Isrc -DSQLITE_CORE $(FUZZ_SAN)
FUZZ_OBJS     = $(addprefix build/fuzz/obj/,$(addsuffix .o,$(SRCS)) \
                  $(addprefix kernels_,$(addsuffix .o,$(KLEVELS))))

build/fuzz/obj/%.o: src/%.c $(HEADERS) | build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(CFLAGS_$*) -c $< -o $@
build/fuzz/obj/kernels_%.o: src/vdb_kernels_simd.c $(HEADERS) | build/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(KFLAGS_$*) -c $< -o $@
build/fuzz/obj:
	mkdir -p $@

$(addprefix build/fuzz/,$(FUZZ_ALL)): build/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(FUZZ_OBJS) -lsqlite3 -lm

EXTRA_TEST_DEPS += $(addprefix build/fuzz/,$(FUZZ_ALL))

.PHONY: fuzz
fuzz:
	@$(MAKE) --no-print-directory $(addprefix build/fuzz/,$(FUZZ_TARGETS))
	@status=0; for t in $(FUZZ_TARGETS); do \
	  nice -n 19 sh tests/fuzz/run.sh $$t $(FUZZ_SECONDS) long || status=1; \
	done; exit $$status
