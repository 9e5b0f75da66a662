# make demo's picture step (scripts/demo_picture.py) on a tiny database.
run_suite demo-picture $PY tests/test_demo_picture.py ./vectordb
