# make install / uninstall, pkg-config and the amalgamation (tests/test_install.sh).
run_suite install sh tests/test_install.sh
