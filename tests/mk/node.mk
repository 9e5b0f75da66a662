# The Node package's test dependencies: better-sqlite3 12.11.1 from the npm
# registry, built from source by node-gyp against the installed Node's
# headers (its prebuilt binaries come from GitHub, which is not reachable
# here, so the download is not even tried), and the extension copied next
# to bindings/node/index.js. node_modules stays out of git.
NODE_DIR ?= $(patsubst %/include/node/common.gypi,%,$(firstword $(wildcard \
              /usr/include/node/common.gypi /usr/local/include/node/common.gypi)))
NODE_BETTER_SQLITE3 = bindings/node/node_modules/better-sqlite3/build/Release/better_sqlite3.node

$(NODE_BETTER_SQLITE3): bindings/node/package.json bindings/node/package-lock.json
	@test -n "$(NODE_DIR)" || { echo "node.mk: Node's headers (include/node/common.gypi) not found; set NODE_DIR"; exit 1; }
	cd bindings/node && npm_config_nodedir=$(NODE_DIR) npm_config_build_from_source=true \
	  npm install --no-audit --no-fund
	@touch $@

bindings/node/vectordb.so: vectordb.so
	cp $< $@.tmp && mv $@.tmp $@

EXTRA_TEST_DEPS += $(NODE_BETTER_SQLITE3) bindings/node/vectordb.so
