'use strict';
// vectordb for better-sqlite3 (and any driver with loadExtension(path)).
//
//   const Database = require('better-sqlite3');
//   const vectordb = require('vectordb-sqlite');
//   const db = new Database(':memory:');
//   vectordb.load(db);
//   db.prepare('SELECT vec_distance_l2(?, ?)').pluck().get(new Float32Array([0, 0]), new Float32Array([3, 4]));  // 5
//
// Vectors: better-sqlite3 binds every typed array (any ArrayBufferView) as
// a BLOB of its bytes, so a Float32Array is a float32 vector and an
// Int8Array an int8 vector as they are. A Float64Array or a plain Array is
// not: float32() converts and checks those.
const fs = require('node:fs');
const path = require('node:path');

const SUFFIX = process.platform === 'win32' ? '.dll' : process.platform === 'darwin' ? '.dylib' : '.so';

// The bundled extension's path without its suffix (SQLite adds it), for
// db.loadExtension() or the sqlite3 shell's .load.
function getLoadablePath() {
  const p = path.join(__dirname, 'vectordb');
  if (!fs.existsSync(p + SUFFIX)) {
    throw new Error(`vectordb: the loadable extension ${p}${SUFFIX} is missing; ` +
                    'run npm install in bindings/node (it builds it with make)');
  }
  return p;
}

// Loads vectordb into a better-sqlite3 Database. better-sqlite3 allows
// extension loading through loadExtension() only (never from SQL), so there
// is no setting to restore.
function load(db) {
  if (db === null || typeof db !== 'object' || typeof db.loadExtension !== 'function') {
    throw new TypeError('vectordb.load() expects a better-sqlite3 Database (an object with loadExtension)');
  }
  db.loadExtension(getLoadablePath());
}

// A Float32Array of vector, checked: vector is an Array of numbers or a
// typed array (Float32Array is returned as it is, Float64Array and integer
// arrays are converted). Throws TypeError for anything else and RangeError
// for an empty vector, NaN, infinity, or a number beyond float32's range
// (which would become infinity), naming the element.
function float32(vector) {
  let out;
  if (vector instanceof Float32Array) {
    out = vector;
  } else if (Array.isArray(vector) || (ArrayBuffer.isView(vector) && !(vector instanceof DataView))) {
    out = new Float32Array(vector.length);
    for (let i = 0; i < vector.length; i++) {
      const x = vector[i];
      if (typeof x !== 'number') {
        throw new TypeError(`vectordb: element ${i} is ${x === null ? 'null' : typeof x}, not a number`);
      }
      out[i] = x;
      if (Number.isFinite(x) && !Number.isFinite(out[i])) {
        throw new RangeError(`vectordb: element ${i} (${x}) is beyond float32's range`);
      }
    }
  } else {
    throw new TypeError('vectordb: float32() expects an Array of numbers or a typed array, got ' +
                        (vector === null ? 'null' : vector.constructor ? vector.constructor.name : typeof vector));
  }
  if (out.length === 0) throw new RangeError('vectordb: a vector needs at least one element');
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) {
      throw new RangeError(`vectordb: element ${i} is ${out[i]}; vectors must be finite`);
    }
  }
  return out;
}

// An Int8Array of vector: an Array of integers in -128..127, or an
// Int8Array (returned as it is). Other typed arrays, non-integers and
// out-of-range values throw, naming the element.
function int8(vector) {
  if (vector instanceof Int8Array) {
    if (vector.length === 0) throw new RangeError('vectordb: a vector needs at least one element');
    return vector;
  }
  if (!Array.isArray(vector)) {
    throw new TypeError('vectordb: int8() expects an Array of integers or an Int8Array, got ' +
                        (vector === null ? 'null' : vector.constructor ? vector.constructor.name : typeof vector));
  }
  if (vector.length === 0) throw new RangeError('vectordb: a vector needs at least one element');
  const out = new Int8Array(vector.length);
  for (let i = 0; i < vector.length; i++) {
    const x = vector[i];
    if (!Number.isInteger(x)) {
      throw new TypeError(`vectordb: element ${i} (${String(x)}) is not an integer`);
    }
    if (x < -128 || x > 127) throw new RangeError(`vectordb: element ${i} (${x}) is outside int8's -128..127`);
    out[i] = x;
  }
  return out;
}

// The float32 values of a BLOB that vectordb returned (a Buffer), as a
// Float32Array of their own (a copy, so it is aligned whatever the Buffer's
// offset in its pool). Throws RangeError if the length is not a multiple of 4.
function fromBlob(buf) {
  if (!ArrayBuffer.isView(buf)) throw new TypeError('vectordb: fromBlob() expects a Buffer');
  if (buf.byteLength % 4) {
    throw new RangeError(`vectordb: a float32 BLOB has a multiple of 4 bytes, got ${buf.byteLength}`);
  }
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
  return out;
}

module.exports = { load, getLoadablePath, float32, int8, fromBlob };
