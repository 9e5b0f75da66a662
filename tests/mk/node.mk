# The Node package's test dependencies: better-sqlite3 12.11.1 from the npm
# registry, built from source by node-gyp against the installed Node's
# headers (its prebuilt binaries come from GitHub, which is not reachable
# here, so the download is not even tried), and the extension copied next
# to bindings/node/index.js. node_modules stays out of git.
#
# The build (SQLite's amalgamation and the addon, about 2 min of CPU at
# node-gyp's -O3) is done at -O1, which the package's few tests do not
# notice, and its result is kept in a per-user cache keyed by the
# better-sqlite3 version and Node's ABI, platform and architecture:
#   $XDG_CACHE_HOME/vectordb (default ~/.cache/vectordb)/better-sqlite3-VERSION-nodeABI-OS-ARCH/
# A later clone then installs the package without its install scripts and
# copies the cached addon in. Without the cache (a fresh machine) it is
# built as before; delete the directory to force a rebuild.
NODE_DIR ?= $(patsubst %/include/node/common.gypi,%,$(firstword $(wildcard \
              /usr/include/node/common.gypi /usr/local/include/node/common.gypi)))
NODE_BETTER_SQLITE3 = bindings/node/node_modules/better-sqlite3/build/Release/better_sqlite3.node
NODE_ABI := $(shell node -p 'process.versions.modules + "-" + process.platform + "-" + process.arch' 2>/dev/null)
VDB_CACHE_HOME ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vectordb
NODE_BETTER_SQLITE3_CACHE = $(VDB_CACHE_HOME)/better-sqlite3-$(BETTER_SQLITE3_VERSION)-node$(NODE_ABI)/better_sqlite3.node

# After vectordb.so: npm runs the package's own install script, which makes
# vectordb.so too, and two makes must not build the same objects at once.
$(NODE_BETTER_SQLITE3): bindings/node/package.json bindings/node/package-lock.json | vectordb.so
	@test -n "$(NODE_DIR)" || { echo "node.mk: Node's headers (include/node/common.gypi) not found; set NODE_DIR"; exit 1; }
	@if [ -n "$(NODE_ABI)" ] && [ -f "$(NODE_BETTER_SQLITE3_CACHE)" ]; then \
	  echo "node.mk: better-sqlite3 from the cache $(NODE_BETTER_SQLITE3_CACHE)"; \
	  (cd bindings/node && npm install --no-audit --no-fund --ignore-scripts) || exit 1; \
	  mkdir -p $(dir $@) && cp "$(NODE_BETTER_SQLITE3_CACHE)" $@.tmp && mv $@.tmp $@; \
	else \
	  (cd bindings/node && CFLAGS=-O1 CXXFLAGS=-O1 JOBS=$(or $(TEST_JOBS),1) \
	    npm_config_nodedir=$(NODE_DIR) npm_config_build_from_source=true \
	    npm install --no-audit --no-fund) || exit 1; \
	  touch $@; \
	  if [ -n "$(NODE_ABI)" ] && mkdir -p "$(dir $(NODE_BETTER_SQLITE3_CACHE))" 2>/dev/null; then \
	    cp $@ "$(NODE_BETTER_SQLITE3_CACHE).tmp.$$$$" && mv "$(NODE_BETTER_SQLITE3_CACHE).tmp.$$$$" "$(NODE_BETTER_SQLITE3_CACHE)"; \
	  fi; \
	fi

bindings/node/vectordb.so: vectordb.so
	cp $< $@.tmp && mv $@.tmp $@

EXTRA_TEST_DEPS += $(NODE_BETTER_SQLITE3) bindings/node/vectordb.so
