/**
 * Streaming safetensors reader for the converter. Only the header is parsed up front (8-byte
 * little-endian length + JSON); tensor bytes are read on demand with positioned `read`s, one
 * row range at a time, so a 25 GB checkpoint never sits in memory. Every offset in the header is
 * checked against the file size when the file is opened, so a truncated download is refused
 * before any work starts, and the tensors must tile the data section (no overlap, no gap). Multi-file Hugging Face checkpoints (`model.safetensors.index.json`) are
 * opened as one `Checkpoint` through their `weight_map`.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FormatError, IntegrityError } from '../src/errors.js';

/** The source dtypes the converter reads; anything else is refused by name. */
export type SourceDType = 'BF16' | 'F16' | 'F32';

export const SOURCE_DTYPES: readonly SourceDType[] = ['BF16', 'F16', 'F32'];

const ITEM_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};

/** One tensor as the header describes it. `dtype` is the raw safetensors dtype string. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the first element in the file. */
  start: number;
  byteLength: number;
}

/** Maximum JSON header size accepted (the format's own limit is 100 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

export function itemSize(dtype: string): number | undefined {
  return ITEM_SIZE[dtype];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/**
 * Parses and validates a header against the file size. Throws FormatError for a malformed header
 * and IntegrityError when the data section is shorter than the header claims (truncated file).
 */
export function parseHeader(file: string, headerJson: string, headerLen: number, fileSize: number): TensorInfo[] {
  let raw: unknown;
  try {
    raw = JSON.parse(headerJson);
  } catch (e) {
    throw new FormatError(`${file}: safetensors header is not valid JSON`, { cause: e });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new FormatError(`${file}: safetensors header is not an object`);
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const out: TensorInfo[] = [];
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') throw new FormatError(`${file}: tensor "${name}" has no header entry`);
    const { dtype, shape, data_offsets: offs } = e;
    if (typeof dtype !== 'string') throw new FormatError(`${file}: tensor "${name}" has no dtype`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new FormatError(`${file}: tensor "${name}" has a bad shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[1] < offs[0]) {
      throw new FormatError(`${file}: tensor "${name}" has bad data_offsets ${JSON.stringify(offs)}`);
    }
    const [a, b] = offs as [number, number];
    const size = itemSize(dtype);
    if (size !== undefined && numel(shape) * size !== b - a) {
      throw new FormatError(`${file}: tensor "${name}" ${dtype}${JSON.stringify(shape)} needs ${numel(shape) * size} bytes but data_offsets span ${b - a}`);
    }
    if (b > dataSize) {
      throw new IntegrityError(
        `${file}: truncated: tensor "${name}" ends at byte ${dataStart + b} but the file has only ${fileSize} bytes`,
      );
    }
    out.push({ name, dtype, shape: shape as number[], start: dataStart + a, byteLength: b - a });
  }
  checkTiling(file, out, dataStart, dataSize);
  return out;
}

/**
 * The tensors must tile the data section exactly, as the format requires (and the reference
 * `safetensors` crate checks): in offset order each one starts where the previous one ended and
 * the last one ends at the end of the file. Overlapping tensors would alias each other's bytes
 * and a gap means bytes nobody accounts for: both are refused rather than converted.
 */
function checkTiling(file: string, list: readonly TensorInfo[], dataStart: number, dataSize: number): void {
  const sorted = [...list].sort((x, y) => x.start - y.start || x.byteLength - y.byteLength);
  let end = dataStart;
  let prev: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.start < end) {
      throw new FormatError(
        `${file}: tensors "${prev!.name}" (bytes ${prev!.start - dataStart}..${end - dataStart}) and "${t.name}" ` +
          `(bytes ${t.start - dataStart}..${t.start - dataStart + t.byteLength}) overlap`,
      );
    }
    if (t.start > end) {
      throw new FormatError(
        `${file}: ${t.start - end} byte gap before tensor "${t.name}" (data bytes ${end - dataStart}..${t.start - dataStart} belong to no tensor)`,
      );
    }
    end = t.start + t.byteLength;
    if (t.byteLength > 0 || !prev) prev = t;
  }
  if (end - dataStart !== dataSize) {
    throw new FormatError(`${file}: ${dataSize - (end - dataStart)} bytes after the last tensor belong to no tensor`);
  }
}

/** One open safetensors file. Call `close()` when done. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly tensors: Map<string, TensorInfo>,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const name = basename(path);
      if (size < 8) throw new IntegrityError(`${name}: truncated: ${size} bytes, not even a safetensors header length`);
      const lenBuf = Buffer.alloc(8);
      await readExact(fh, lenBuf, 0, name);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > MAX_HEADER) throw new FormatError(`${name}: safetensors header length ${headerLen} is implausible (not a safetensors file?)`);
      if (8 + headerLen > size) throw new IntegrityError(`${name}: truncated: header needs ${8 + headerLen} bytes, file has ${size}`);
      const hdr = Buffer.alloc(headerLen);
      await readExact(fh, hdr, 8, name);
      const list = parseHeader(name, hdr.toString('utf8'), headerLen, size);
      return new SafetensorsFile(path, fh, size, new Map(list.map((t) => [t.name, t])));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /**
   * Reads `length` bytes at `byteOffset` relative to the tensor's start into a fresh buffer that
   * starts at offset 0 of its own ArrayBuffer (so typed-array views on it are aligned).
   */
  async read(t: TensorInfo, byteOffset: number, length: number): Promise<Uint8Array> {
    if (byteOffset < 0 || byteOffset + length > t.byteLength) {
      throw new RangeError(`${t.name}: read [${byteOffset}, ${byteOffset + length}) outside ${t.byteLength} bytes`);
    }
    const buf = new Uint8Array(length);
    await readExact(this.fh, buf, t.start + byteOffset, basename(this.path));
    return buf;
  }

  /** Like `read`, into `target` (filled completely): lets the converter reuse one buffer. */
  async readInto(t: TensorInfo, byteOffset: number, target: Uint8Array): Promise<void> {
    if (byteOffset < 0 || byteOffset + target.length > t.byteLength) {
      throw new RangeError(`${t.name}: read [${byteOffset}, ${byteOffset + target.length}) outside ${t.byteLength} bytes`);
    }
    await readExact(this.fh, target, t.start + byteOffset, basename(this.path));
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readExact(fh: FileHandle, buf: Uint8Array, position: number, name: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new IntegrityError(`${name}: truncated: unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

/** A tensor together with the file it lives in. */
export interface SourceTensor extends TensorInfo {
  file: SafetensorsFile;
}

/** Several safetensors files seen as one name -> tensor map (duplicate names are refused). */
export class Checkpoint {
  private constructor(
    readonly files: SafetensorsFile[],
    readonly tensors: Map<string, SourceTensor>,
  ) {}

  static async open(paths: string[]): Promise<Checkpoint> {
    const files: SafetensorsFile[] = [];
    try {
      for (const p of paths) files.push(await SafetensorsFile.open(p));
    } catch (e) {
      await Promise.all(files.map((f) => f.close()));
      throw e;
    }
    const tensors = new Map<string, SourceTensor>();
    for (const f of files) {
      for (const t of f.tensors.values()) {
        const prev = tensors.get(t.name);
        if (prev) {
          await Promise.all(files.map((x) => x.close()));
          throw new FormatError(`tensor "${t.name}" appears in both ${basename(prev.file.path)} and ${basename(f.path)}`);
        }
        tensors.set(t.name, { ...t, file: f });
      }
    }
    return new Checkpoint(files, tensors);
  }

  /**
   * Opens the files a Hugging Face `model.safetensors.index.json` names, and checks that every
   * tensor in its `weight_map` is where the index says.
   */
  static async openIndex(indexPath: string): Promise<Checkpoint> {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await readFile(indexPath, 'utf8')) as typeof index;
    } catch (e) {
      throw new FormatError(`${basename(indexPath)}: not valid JSON`, { cause: e });
    }
    const map = index.weight_map;
    if (!map || typeof map !== 'object') throw new FormatError(`${basename(indexPath)}: no "weight_map"`);
    const names = [...new Set(Object.values(map))].sort();
    for (const n of names) {
      if (typeof n !== 'string' || n.includes('/') || n.includes('\\')) throw new FormatError(`${basename(indexPath)}: bad file name ${JSON.stringify(n)}`);
    }
    const ckpt = await Checkpoint.open(names.map((n) => join(dirname(indexPath), n)));
    for (const [tensor, file] of Object.entries(map)) {
      const t = ckpt.tensors.get(tensor);
      if (!t || basename(t.file.path) !== file) {
        await ckpt.close();
        throw new FormatError(`${basename(indexPath)}: tensor "${tensor}" is not in ${file}`);
      }
    }
    return ckpt;
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}
