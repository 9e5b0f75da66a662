# Fault injection under an HNSW-indexed table (build rules and the long
# forms, `make faulttest`: tests/mk/faults.mk). The optional last argument
# is a stride: 1 tries every fault point, N every N-th.
#   faults      every I/O error point of every scenario (read, write, sync,
#               truncate; once and from then on; DELETE and WAL journals),
#               and 90 power losses with recovery checks
#   oom         allocation failures, every 20th point of every scenario,
#               each with a leak check (outstanding allocations after close)
# The sanitizer builds take a sparser sample of the same points. `make
# longtest` runs the sparse ones at half these strides (6, 10 and 40).
run_suite faults            ./build/core/test_faults short
run_suite asan-faults       ./build/asan-core/test_faults short 12
run_suite oom               ./build/core/test_oom short 20
run_suite asan-oom          ./build/asan-core/test_oom short 80
