'use strict';
// npm's install step: build the loadable extension with the repository's
// own Makefile (this directory is bindings/node of a vectordb checkout) and
// put a copy next to index.js, where getLoadablePath() finds it.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
if (!fs.existsSync(path.join(root, 'Makefile')) || !fs.existsSync(path.join(root, 'src', 'vdb_main.c'))) {
  console.error(`vectordb: this package builds from a vectordb checkout, but ${root} is not one`);
  process.exit(1);
}
try {
  execFileSync('make', ['--no-print-directory', '-C', root, 'vectordb.so'], { stdio: 'inherit' });
} catch (e) {
  console.error('vectordb: `make vectordb.so` failed (needs make, gcc, libsqlite3-dev, libsimde-dev)');
  process.exit(1);
}
const dest = path.join(__dirname, 'vectordb.so');
fs.copyFileSync(path.join(root, 'vectordb.so'), dest + '.tmp');
fs.renameSync(dest + '.tmp', dest);
