export function load(db: { loadExtension(path: string): unknown }): void;
export function getLoadablePath(): string;
export function float32(vector: ArrayLike<number>): Float32Array;
export function fromBlob(buf: ArrayBufferView): Float32Array;
export function int8(vector: ArrayLike<number>): Int8Array;
