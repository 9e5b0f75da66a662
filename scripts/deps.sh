#!/bin/sh
# Install what vectordb's build, tests, demo and benchmarks need from
# Debian's packages. Does nothing (and needs no network) when all is present.
set -eu
PKGS="gcc make libsqlite3-dev sqlite3 libsimde-dev python3 python3-numpy
      golang-go golang-github-canonical-go-dqlite-dev libdqlite-dev libraft-dev go-dqlite
      dataset-fashion-mnist libhnswlib-dev libfaiss-dev g++ gnuplot-nox
      clang libclang-rt-14-dev valgrind pkg-config python3-venv
      python3-pil curl time"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm may come from a Node.js install rather than Debian's package.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
