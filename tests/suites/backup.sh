# Backup and restore of a live indexed table (tests/test_backup.py): the
# online backup API and VACUUM INTO while another process writes, and
# Litestream replication with a point-in-time restore.
run_suite backup $PY tests/test_backup.py ./vectordb .cache/litestream-1.0.1/litestream
