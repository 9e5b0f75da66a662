# The Python package (bindings/python): offline pip install into a fresh
# venv, vectordb.load(), the serialize helpers (tests/test_python_pkg.py).
run_suite python-package $PY tests/test_python_pkg.py "$PWD"
