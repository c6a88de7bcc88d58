/**
 * Streaming GGUF header reader: magic, version, metadata key/values, tensor infos and the
 * aligned start of the tensor data, read from a `ByteSource` in growing chunks (256 KiB, then
 * doubling), so a 7.5 GB model's size, architecture and quant mix are known after a few MiB and
 * before any weight byte. Works in browsers and Node alike (no Node API).
 *
 * Why not `@huggingface/gguf` (maintained): it takes a URL (or a local path in Node)
 * and its own fetch loop, so it cannot read a picked `File` in place or a Node file handle through
 * one interface, and its errors are plain `Error`s; this reader is ~250 lines over the same
 * public format (ggml's `docs/gguf.md`) and reports bad input as `FormatError`/`IntegrityError`
 * naming the file, the key or the tensor.
 *
 * Format (little-endian): "GGUF", u32 version (2 or 3), u64 tensor count, u64 KV count; each KV
 * is a string key, a u32 value type and the value (arrays: u32 element type, u64 count, elements);
 * each tensor info is a string name, u32 n_dims, u64 ne[n_dims] (ne0 first), u32 ggml type, u64
 * offset (relative to the data start, a multiple of the alignment). The data starts at the first
 * multiple of `general.alignment` (default 32) after the infos.
 */
import { FormatError, IntegrityError } from '../errors.js';
import type { ByteSource } from './source.js';
import { blockShape, rowsBytes, typeName } from './types.js';

export type GgufValue = number | bigint | boolean | string | GgufArray;
/** Arrays keep numbers in typed arrays where GGUF's element type allows (token scores, types). */
export type GgufArray = readonly string[] | readonly boolean[] | Float32Array | Float64Array | Int32Array | Uint32Array
  | Int16Array | Uint16Array | Int8Array | Uint8Array | BigInt64Array | BigUint64Array | readonly GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** GGUF order: ne0 (innermost, contiguous) first. */
  shape: number[];
  /** ggml type id and name. */
  type: number;
  typeName: string;
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  source: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data. */
  dataOffset: number;
  /** Bytes the header declares: the end of the last tensor. */
  declaredSize: number;
  /** The source's size when known (a URL learns it from the first Content-Range). */
  fileSize?: number;
  /** Header bytes actually read from the source. */
  bytesRead: number;
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const FIRST_CHUNK = 256 << 10;
/** Bounds against a corrupt count making the reader allocate or loop without end. */
const MAX_COUNT = 1 << 24;
const MAX_STRING = 1 << 26;

/** Reads the header of the GGUF in `src` (see the module comment). */
export async function readGgufHeader(src: ByteSource, opts: { signal?: AbortSignal; firstChunk?: number } = {}): Promise<GgufHeader> {
  const r = new Cursor(src, opts.firstChunk ?? FIRST_CHUNK, opts.signal);
  if ((await r.u32('magic')) !== MAGIC) throw new FormatError(`${src.name}: not a GGUF file (no "GGUF" magic)`);
  const version = await r.u32('version');
  if (version !== 2 && version !== 3) throw new FormatError(`${src.name}: GGUF version ${version} is not supported (2 or 3)`);
  const nTensors = await r.count('tensor count');
  const nKv = await r.count('metadata count');
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = await r.string(`metadata key ${i}`);
    const type = await r.u32(key);
    if (metadata.has(key)) throw new FormatError(`${src.name}: metadata key "${key}" appears twice`);
    metadata.set(key, await r.value(type, key));
  }
  const alignment = metadata.get('general.alignment') ?? 32;
  if (typeof alignment !== 'number' || alignment <= 0 || alignment % 8 !== 0) {
    throw new FormatError(`${src.name}: general.alignment ${String(alignment)} must be a positive multiple of 8`);
  }
  const raw: { name: string; shape: number[]; type: number; rel: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = await r.string(`tensor ${i} name`);
    const nDims = await r.u32(`${name} n_dims`);
    if (nDims < 1 || nDims > 4) throw new FormatError(`${src.name}: tensor "${name}" has ${nDims} dimensions (1..4)`);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(await r.count(`${name} ne${d}`, Number.MAX_SAFE_INTEGER));
    const type = await r.u32(`${name} type`);
    const rel = await r.count(`${name} offset`, Number.MAX_SAFE_INTEGER);
    raw.push({ name, shape, type, rel });
  }
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const names = new Set<string>();
  let declaredSize = dataOffset;
  const tensors = raw.map(({ name, shape, type, rel }): GgufTensorInfo => {
    if (names.has(name)) throw new FormatError(`${src.name}: tensor "${name}" appears twice`);
    names.add(name);
    const tn = typeName(type);
    if (!blockShape(type)) throw new FormatError(`${src.name}: tensor "${name}" has unknown ggml ${tn}`);
    if (shape.some((n) => n < 1)) throw new FormatError(`${src.name}: tensor "${name}" has shape [${shape}]`);
    const rows = shape.slice(1).reduce((a, b) => a * b, 1);
    const byteLength = rowsBytes(type, shape[0]!, rows);
    if (byteLength === undefined) {
      throw new FormatError(`${src.name}: tensor "${name}" ne0=${shape[0]} is not a whole number of ${tn} blocks of ${blockShape(type)!.elems}`);
    }
    if (rel % alignment !== 0) throw new FormatError(`${src.name}: tensor "${name}" offset ${rel} is not aligned to ${alignment}`);
    declaredSize = Math.max(declaredSize, dataOffset + rel + byteLength);
    return { name, shape, type, typeName: tn, offset: dataOffset + rel, byteLength };
  });
  checkOverlaps(src.name, tensors);
  const fileSize = await src.size();
  if (fileSize !== undefined && fileSize < declaredSize) {
    throw new IntegrityError(`${src.name}: truncated: the header declares ${declaredSize} bytes of tensors, the file has ${fileSize}`);
  }
  return { source: src.name, version, metadata, tensors, alignment, dataOffset, declaredSize, fileSize, bytesRead: r.fetched };
}

function checkOverlaps(name: string, tensors: readonly GgufTensorInfo[]): void {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (a.offset + a.byteLength > b.offset) throw new FormatError(`${name}: tensors "${a.name}" and "${b.name}" overlap`);
  }
}

/** Sequential little-endian reads over a ByteSource, fetching in doubling chunks. */
class Cursor {
  pos = 0;
  fetched = 0;
  private buf = new Uint8Array(0);
  private bufStart = 0;
  private view = new DataView(this.buf.buffer);
  private chunk: number;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly src: ByteSource,
    firstChunk: number,
    private readonly signal?: AbortSignal,
  ) {
    this.chunk = firstChunk;
  }

  /** Makes bytes [pos, pos + n) available in `buf`. */
  private async need(n: number, what: string): Promise<void> {
    const end = this.pos + n;
    if (end <= this.bufStart + this.buf.byteLength) return;
    this.signal?.throwIfAborted();
    // Keep the unread tail, append at least one more chunk (and at least what is needed).
    const keepFrom = this.pos - this.bufStart;
    const tail = this.buf.subarray(keepFrom);
    const want = Math.max(this.chunk, end - (this.bufStart + this.buf.byteLength));
    const fetchAt = this.bufStart + this.buf.byteLength;
    const more = await this.src.read(fetchAt, want, this.signal);
    this.fetched += more.byteLength;
    this.chunk = Math.min(this.chunk * 2, 64 << 20);
    const next = new Uint8Array(tail.byteLength + more.byteLength);
    next.set(tail);
    next.set(more, tail.byteLength);
    this.buf = next;
    this.bufStart = this.pos;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    if (end > this.bufStart + next.byteLength) {
      throw new IntegrityError(`${this.src.name}: truncated in the header (reading ${what} at byte ${this.pos})`);
    }
  }

  private at(): number {
    return this.pos - this.bufStart;
  }

  async u32(what: string): Promise<number> {
    await this.need(4, what);
    const v = this.view.getUint32(this.at(), true);
    this.pos += 4;
    return v;
  }

  async u64(what: string): Promise<bigint> {
    await this.need(8, what);
    const v = this.view.getBigUint64(this.at(), true);
    this.pos += 8;
    return v;
  }

  /** A u64 that must be a count/offset below `max`. */
  async count(what: string, max = MAX_COUNT): Promise<number> {
    const v = await this.u64(what);
    if (v > BigInt(max)) throw new FormatError(`${this.src.name}: ${what} is ${v}, more than ${max}`);
    return Number(v);
  }

  async bytes(n: number, what: string): Promise<Uint8Array> {
    await this.need(n, what);
    const b = this.buf.subarray(this.at(), this.at() + n);
    this.pos += n;
    return b;
  }

  async string(what: string): Promise<string> {
    const n = await this.count(`${what} length`, MAX_STRING);
    const b = await this.bytes(n, what);
    try {
      return this.utf8.decode(b);
    } catch {
      throw new FormatError(`${this.src.name}: ${what} is not valid UTF-8`);
    }
  }

  async value(type: number, key: string): Promise<GgufValue> {
    const size = SCALAR_SIZE[type];
    if (size !== undefined) {
      await this.need(size, key);
      const v = scalarAt(this.view, this.at(), type);
      this.pos += size;
      if (type === 7 && v !== 0 && v !== 1) throw new FormatError(`${this.src.name}: "${key}" bool is ${String(v)}`);
      return type === 7 ? v === 1 : v;
    }
    if (type === 8) return this.string(key);
    if (type === 9) return this.array(key);
    throw new FormatError(`${this.src.name}: "${key}" has unknown value type ${type}`);
  }

  private async array(key: string): Promise<GgufArray> {
    const type = await this.u32(`${key} element type`);
    const n = await this.count(`${key} length`);
    const size = SCALAR_SIZE[type];
    if (size !== undefined) {
      const b = await this.bytes(n * size, key);
      const Typed = TYPED[type];
      if (Typed) {
        // Copied: the chunk buffer is reused; copying also fixes the alignment.
        return new Typed(b.slice().buffer) as GgufArray;
      }
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return Array.from({ length: n }, (_, i) => scalarAt(view, i, type) === 1);
    }
    const out: GgufValue[] = [];
    for (let i = 0; i < n; i++) out.push(await this.value(type, `${key}[${i}]`));
    return type === 8 ? (out as string[]) : out;
  }
}

/** GGUF value types with a fixed size: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 10 u64, 11 i64, 12 f64. */
const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

const TYPED: Record<number, new (b: ArrayBufferLike) => ArrayBufferView> = {
  0: Uint8Array, 1: Int8Array, 2: Uint16Array, 3: Int16Array, 4: Uint32Array, 5: Int32Array, 6: Float32Array,
  10: BigUint64Array, 11: BigInt64Array, 12: Float64Array,
};

function scalarAt(v: DataView, at: number, type: number): number | bigint {
  switch (type) {
    case 0: case 7: return v.getUint8(at);
    case 1: return v.getInt8(at);
    case 2: return v.getUint16(at, true);
    case 3: return v.getInt16(at, true);
    case 4: return v.getUint32(at, true);
    case 5: return v.getInt32(at, true);
    case 6: return v.getFloat32(at, true);
    case 10: return v.getBigUint64(at, true);
    case 11: return v.getBigInt64(at, true);
    default: return v.getFloat64(at, true);
  }
}
