# The replicated node (issue 15): vectordb inside dqlite, with an HTTP API.
#
#   make vectordb-node   build/vectordb-node (Go, built offline in GOPATH
#                        mode from Debian's go-dqlite sources; cgo links
#                        libdqlite, libsqlite3 and libvectordb.a)
#   make test            runs the short failover test (tests/suites/cluster.sh)
#   make clustertest     20 leader kills under continuous writes and searches
#
# Debian's packages: golang-go, golang-github-canonical-go-dqlite-dev,
# libdqlite-dev, go-dqlite (the dqlite shell used for node removal).

GO_ENV = GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/build/gocache \
         CGO_LDFLAGS_ALLOW='-Wl,-z,now'

build/vectordb-node: $(wildcard cluster/node/*.go cluster/node/*.c cluster/node/*.h) libvectordb.a src/vectordb.h | build
	$(GO_ENV) go build -o $@ ./cluster/node

build/vectordb-clustertest: $(wildcard cluster/ctest/*.go) | build
	$(GO_ENV) go build -o $@ ./cluster/ctest

.PHONY: vectordb-node clustertest
vectordb-node: build/vectordb-node

EXTRA_TEST_DEPS += build/vectordb-node build/vectordb-clustertest

clustertest: deps
	@$(MAKE) --no-print-directory build/vectordb-node build/vectordb-clustertest
	./build/vectordb-clustertest -node build/vectordb-node -kills 20 -deadline 300s
