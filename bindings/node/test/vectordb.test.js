'use strict';
// node --test: the package with better-sqlite3 12.11.1 on Debian's Node 20.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const Database = require('better-sqlite3');
const vectordb = require('..');

function open() {
  const db = new Database(':memory:');
  vectordb.load(db);
  return db;
}

test('getLoadablePath names the bundled extension without its suffix', () => {
  const p = vectordb.getLoadablePath();
  assert.equal(p, path.join(__dirname, '..', 'vectordb'));
  assert.ok(fs.statSync(p + '.so').isFile());
});

test('load registers the functions and the table module', () => {
  const db = open();
  assert.match(db.prepare('SELECT vec_version()').pluck().get(), /^v\d/);
  assert.equal(db.prepare("SELECT vec_distance_l2('[0,0]', '[3,4]')").pluck().get(), 5);
});

test('load rejects what is not a database', () => {
  for (const bad of [null, undefined, 'db', {}, 42]) {
    assert.throws(() => vectordb.load(bad), { name: 'TypeError', message: /better-sqlite3 Database/ });
  }
});

test('a Float32Array binds as a float32 vector, subarrays too', () => {
  const db = open();
  const v = new Float32Array([0.5, -1.25, 3]);
  assert.equal(db.prepare('SELECT vec_to_json(?)').pluck().get(v), '[0.5,-1.25,3.0]');
  // A view at an offset into a larger buffer binds only its own bytes.
  const big = new Float32Array([9, 9, 0.5, -1.25, 3, 9]);
  assert.equal(db.prepare('SELECT vec_to_json(?)').pluck().get(big.subarray(2, 5)),
               '[0.5,-1.25,3.0]');
  const blob = db.prepare('SELECT vec_f32(?)').pluck().get(v);
  assert.ok(Buffer.isBuffer(blob));
  assert.deepEqual(vectordb.fromBlob(blob), v);
});

test('KNN query with Float32Array rows and query', () => {
  const db = open();
  db.exec('CREATE VIRTUAL TABLE items USING vectordb(embedding float[4], genre text)');
  const rows = [];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const ins = db.prepare('INSERT INTO items(rowid, embedding, genre) VALUES (?, ?, ?)');
  for (let i = 1; i <= 200; i++) {
    const v = new Float32Array([rnd(), rnd(), rnd(), rnd()]);
    rows.push([i, v]);
    ins.run(i, v, i % 2 ? 'odd' : 'even');
  }
  const q = new Float32Array([0.1, -0.2, 0.3, 0.05]);
  const dist = (v) => Math.sqrt(v.reduce((s, x, j) => s + (x - q[j]) ** 2, 0));
  const want = rows.map(([id, v]) => [dist(v), id]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).slice(0, 5);
  const got = db.prepare('SELECT rowid, distance FROM items WHERE embedding MATCH ? AND k = 5').all(q);
  assert.deepEqual(got.map((r) => r.rowid), want.map((w) => w[1]));
  got.forEach((r, j) => assert.ok(Math.abs(r.distance - want[j][0]) < 1e-5));
  const odd = db.prepare("SELECT rowid FROM items WHERE embedding MATCH ? AND k = 3 AND genre = 'odd'").pluck().all(q);
  assert.equal(odd.length, 3);
  assert.ok(odd.every((id) => id % 2 === 1));
});

test('a Float64Array bound directly is read as twice as many float32 values', () => {
  const db = open();
  db.exec('CREATE VIRTUAL TABLE t USING vectordb(e float[3])');
  assert.throws(() => db.prepare('INSERT INTO t(rowid, e) VALUES (1, ?)').run(new Float64Array([1, 2, 3])),
                /expects 3 dimensions, got 6/);
  db.prepare('INSERT INTO t(rowid, e) VALUES (1, ?)').run(vectordb.float32(new Float64Array([1, 2, 3])));
  assert.equal(db.prepare('SELECT vec_to_json(e) FROM t').pluck().get(), '[1.0,2.0,3.0]');
});

test('float32() converts arrays and rejects what vectordb would refuse', () => {
  const f = new Float32Array([1, 2]);
  assert.equal(vectordb.float32(f), f);
  assert.deepEqual(vectordb.float32([1, 2.5]), new Float32Array([1, 2.5]));
  assert.deepEqual(vectordb.float32(new Int16Array([3, -4])), new Float32Array([3, -4]));
  assert.throws(() => vectordb.float32([1, NaN]), { name: 'RangeError', message: /element 1 is NaN/ });
  assert.throws(() => vectordb.float32(new Float32Array([0, 0, Infinity])), { name: 'RangeError', message: /element 2 is Infinity/ });
  assert.throws(() => vectordb.float32([1e39]), { name: 'RangeError', message: /element 0 \(1e\+39\) is beyond float32/ });
  assert.throws(() => vectordb.float32([]), { name: 'RangeError', message: /at least one element/ });
  assert.throws(() => vectordb.float32([1, '2']), { name: 'TypeError', message: /element 1 is string/ });
  assert.throws(() => vectordb.float32([null]), { name: 'TypeError', message: /element 0 is null/ });
  assert.throws(() => vectordb.float32('[1,2]'), { name: 'TypeError', message: /got String/ });
  assert.throws(() => vectordb.float32(new DataView(new ArrayBuffer(8))), { name: 'TypeError', message: /got DataView/ });
});

test('int8() and Int8Array vectors', () => {
  const db = open();
  db.exec('CREATE VIRTUAL TABLE t USING vectordb(e int8[3])');
  const ins = db.prepare('INSERT INTO t(rowid, e) VALUES (?, vec_int8(?))');
  ins.run(1, new Int8Array([1, 2, 3]));
  ins.run(2, vectordb.int8([-100, 50, 0]));
  assert.deepEqual(db.prepare('SELECT rowid FROM t WHERE e MATCH vec_int8(?) AND k = 1').pluck().all(vectordb.int8([-90, 40, 1])), [2]);
  assert.throws(() => vectordb.int8([0, 128]), { name: 'RangeError', message: /element 1 \(128\) is outside int8/ });
  assert.throws(() => vectordb.int8([1.5]), { name: 'TypeError', message: /element 0 \(1.5\) is not an integer/ });
  assert.throws(() => vectordb.int8(new Uint8Array([1])), { name: 'TypeError', message: /got Uint8Array/ });
  assert.throws(() => vectordb.int8([]), { name: 'RangeError', message: /at least one element/ });
  assert.throws(() => vectordb.int8(new Int8Array(0)), { name: 'RangeError', message: /at least one element/ });
});

test('fromBlob copies into an aligned Float32Array and checks the length', () => {
  const raw = Buffer.alloc(13);
  const view = raw.subarray(1, 9);                 // odd offset: not 4-aligned
  new DataView(view.buffer, view.byteOffset).setFloat32(0, 1.5, true);
  new DataView(view.buffer, view.byteOffset).setFloat32(4, -2, true);
  assert.deepEqual(vectordb.fromBlob(view), new Float32Array([1.5, -2]));
  assert.throws(() => vectordb.fromBlob(Buffer.alloc(5)), { name: 'RangeError', message: /multiple of 4 bytes, got 5/ });
  assert.throws(() => vectordb.fromBlob('abcd'), { name: 'TypeError' });
});

test("README.md's example (section \"Node package\") runs as printed", () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.split('\n### Node package\n')[1];
  assert.ok(section, 'README has no "### Node package" section');
  const code = section.split('```js\n')[1].split('\n```')[0];
  const logged = [];
  // This file's require resolves better-sqlite3 and, through package.json's
  // "exports", the package's own name.
  new Function('require', 'console', code)(require, { log: (...a) => logged.push(a) });
  assert.equal(logged.length, 1);
  const [rows] = logged[0];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].rowid, 2);
  assert.ok(Math.abs(rows[0].distance - Math.sqrt(0.02)) < 1e-6, String(rows[0].distance));
});
