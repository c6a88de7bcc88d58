/**
 * Streams a cached model from IndexedDB into GPU buffers, one shard at a time: a shard is read
 * (and its SHA-256 re-checked, see `store.ts`), each tensor segment in it is written with
 * `queue.writeBuffer` at its place, and the shard is dropped before the next is read, so JS
 * memory holds at most one shard, never the model.
 *
 * Placement: every tensor gets one GPUBuffer, or, when its bytes exceed
 * `maxStorageBufferBindingSize`, one buffer per row part (`splitRows`, part boundaries on 4-byte
 * multiples); a q4 tensor gets a second buffer per part for its scales, covering the same rows.
 * `rowParts` overrides the split (e.g. to align parts to a kernel's tile height).
 *
 * The result, `GpuWeights`, maps each tensor name to `{ dtype, shape, parts: [{ rowStart, rows,
 * data, scales? }] }`; the model code binds `parts[k].data` (and `.scales`) per dispatch.
 */
import { AbortError, FormatError, LimitError, throwIfAborted } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, writeBuffer, type RowPart } from '../gpu/tensor.js';
import { isHostBuffer } from '../gpu/host-buffer.js';
import { segmentBytes, type Segment, type StoredDType, type TensorEntry } from './manifest.js';
import { ProgressTracker, type ProgressCallback } from './progress.js';
import type { ModelFiles } from './store.js';
import type { ModelSource } from './source.js';

export interface GpuTensorPart extends RowPart {
  /** Data bytes of rows [rowStart, rowStart + rows) (q4: the packed u32 nibbles). */
  data: GPUBuffer;
  dataBytes: number;
  /** q4 only: f16 scales of the same rows. */
  scales?: GPUBuffer;
  scalesBytes: number;
}

export interface GpuTensor {
  name: string;
  dtype: StoredDType;
  shape: readonly number[];
  /** Row parts in order; a single part covering all rows unless the tensor was split. */
  parts: GpuTensorPart[];
}

/** The uploaded weights, by canonical tensor name. */
export class GpuWeights {
  constructor(readonly tensors: Map<string, GpuTensor>) {}

  /** The tensor `name`; FormatError when it was not uploaded. */
  get(name: string): GpuTensor {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError(`weights have no tensor "${name}"`);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** GPU bytes held (data + scales; tensors placed in host memory left out). */
  get byteLength(): number {
    let n = 0;
    for (const t of this.tensors.values()) for (const p of t.parts) if (!isHostBuffer(p.data)) n += p.dataBytes + p.scalesBytes;
    return n;
  }

  destroy(): void {
    for (const t of this.tensors.values()) for (const p of t.parts) {
      p.data.destroy();
      p.scales?.destroy();
    }
    this.tensors.clear();
  }
}

export interface UploadOptions {
  /** Which tensors to upload (default: all). */
  filter?: (t: TensorEntry) => boolean;
  /** Row parts of a tensor (must cover [0, shape[0]) in order); default: see the module comment. */
  rowParts?: (t: TensorEntry, maxBindingBytes: number) => RowPart[];
  /** Binding size limit used by the default split (default: the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** Buffer usage (default STORAGE | COPY_SRC | COPY_DST). */
  usage?: GPUBufferUsageFlags;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  progressIntervalMs?: number;
}

function gcd(a: number, b: number): number {
  return b ? gcd(b, a % b) : a;
}

/** Row geometry of a tensor: rows = shape[0], bytes per row of data and of scales. */
export function rowGeometry(t: TensorEntry): { rows: number; dataPerRow: number; scalesPerRow: number } {
  const rows = t.shape[0] ?? 1;
  const dataBytes = segmentBytes(t.data);
  const scalesBytes = t.quant ? segmentBytes(t.quant.scales) : 0;
  if (dataBytes % rows || scalesBytes % rows) throw new FormatError(`${t.name}: ${dataBytes} data bytes do not divide into ${rows} rows`);
  return { rows, dataPerRow: dataBytes / rows, scalesPerRow: scalesBytes / rows };
}

/**
 * One part when the tensor fits the binding limit, else `splitRows` with a row multiple that
 * keeps every part's byte offset (data and scales) a multiple of 4, as writeBuffer requires.
 */
export function defaultRowParts(t: TensorEntry, maxBindingBytes: number): RowPart[] {
  const { rows, dataPerRow, scalesPerRow } = rowGeometry(t);
  if (dataPerRow * rows <= maxBindingBytes && scalesPerRow * rows <= maxBindingBytes) return [{ rowStart: 0, rows }];
  const m1 = 4 / gcd(dataPerRow, 4);
  const m2 = scalesPerRow ? 4 / gcd(scalesPerRow, 4) : 1;
  const mult = (m1 * m2) / gcd(m1, m2);
  return splitRows(rows, Math.max(dataPerRow, scalesPerRow), maxBindingBytes, mult);
}

/**
 * Writes arbitrary byte ranges into GPU buffers although `writeBuffer` needs 4-byte aligned
 * offsets and sizes: the aligned middle of each range goes straight through; the 1-3 bytes at
 * an unaligned head or tail wait in a pending word until its other bytes arrive (a tensor split
 * across shards at an odd byte) or `flush()` (the end of a buffer, zero-padded).
 */
export class AlignedWriter {
  private pending = new Map<GPUBuffer, Map<number, { word: Uint8Array; filled: number }>>();

  constructor(private readonly write: (buffer: GPUBuffer, offset: number, bytes: Uint8Array) => void) {}

  put(buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
    let off = offset;
    let src = bytes;
    const headEnd = Math.min(off + src.byteLength, Math.ceil(off / 4) * 4);
    if (headEnd > off) {
      this.partial(buffer, off, src.subarray(0, headEnd - off));
      src = src.subarray(headEnd - off);
      off = headEnd;
    }
    const body = src.byteLength & ~3;
    if (body) this.write(buffer, off, src.subarray(0, body));
    if (src.byteLength > body) this.partial(buffer, off + body, src.subarray(body));
  }

  private partial(buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
    const base = offset & ~3;
    let words = this.pending.get(buffer);
    if (!words) this.pending.set(buffer, (words = new Map()));
    let w = words.get(base);
    if (!w) words.set(base, (w = { word: new Uint8Array(4), filled: 0 }));
    w.word.set(bytes, offset - base);
    for (let i = 0; i < bytes.byteLength; i++) w.filled |= 1 << (offset - base + i);
    if (w.filled === 0xf) {
      this.write(buffer, base, w.word);
      words.delete(base);
    }
  }

  /** Writes every pending word (missing bytes are zero: padding past a tensor's end). */
  flush(): void {
    for (const [buffer, words] of this.pending) for (const [base, w] of words) this.write(buffer, base, w.word);
    this.pending.clear();
  }
}

interface Job {
  part: GpuTensorPart;
  which: 'data' | 'scales';
  /** Byte range of the tensor's data/scales this part holds. */
  start: number;
  end: number;
}

/**
 * Uploads the tensors of a model (any `ModelSource`: IndexedDB cache, disk) to `gpu`. On any failure (abort, integrity, out of
 * memory) every buffer created so far is destroyed before the error is thrown.
 */
export async function uploadModel(files: ModelSource, gpu: Gpu, opts: UploadOptions = {}): Promise<GpuWeights> {
  throwIfAborted(opts.signal);
  const maxBinding = opts.maxBindingBytes ?? gpu.limits.maxStorageBufferBindingSize;
  const tensors = files.manifest.tensors.filter((t) => opts.filter?.(t) ?? true);
  const out = new Map<string, GpuTensor>();
  const weights = new GpuWeights(out);
  // Per shard: the writes it feeds, [segment, tensor byte offset of the segment, jobs].
  const byShard = new Map<number, { seg: Segment; at: number; jobs: Job[] }[]>();
  let total = 0;
  try {
    // Allocation inside error scopes (an out-of-memory surfaces here, typed); a synchronous
    // throw must not leave the scopes pushed, hence the inner catch.
    let planError: unknown = null;
    await gpu.scoped('weights upload (allocation)', () => {
      try {
        for (const t of tensors) {
          const { rows, dataPerRow, scalesPerRow } = rowGeometry(t);
          const parts = (opts.rowParts ?? defaultRowParts)(t, maxBinding);
          let next = 0;
          for (const p of parts) {
            if (p.rowStart !== next || p.rows <= 0) throw new LimitError(`${t.name}: row parts must cover the rows in order`);
            next += p.rows;
          }
          if (next !== rows) throw new LimitError(`${t.name}: row parts cover ${next} of ${rows} rows`);
          // GGUF block tensors (a `gguf` manifest) go through src/gguf/converted.ts, never here.
          if (t.dtype !== 'f32' && t.dtype !== 'f16' && t.dtype !== 'q4') throw new FormatError(`${t.name}: ${t.dtype} blocks are loaded by the GGUF path`);
          const gt: GpuTensor = { name: t.name, dtype: t.dtype, shape: t.shape, parts: [] };
          out.set(t.name, gt);
          const jobs: { data: Job[]; scales: Job[] } = { data: [], scales: [] };
          for (const [k, p] of parts.entries()) {
            const label = parts.length > 1 ? `${t.name}#${k}` : t.name;
            const dataBytes = p.rows * dataPerRow;
            const scalesBytes = p.rows * scalesPerRow;
            const part: GpuTensorPart = {
              ...p,
              data: createBuffer(gpu, dataBytes, label, opts.usage),
              dataBytes,
              scales: t.quant ? createBuffer(gpu, scalesBytes, `${label}.scales`, opts.usage) : undefined,
              scalesBytes,
            };
            gt.parts.push(part);
            jobs.data.push({ part, which: 'data', start: p.rowStart * dataPerRow, end: p.rowStart * dataPerRow + dataBytes });
            if (t.quant) jobs.scales.push({ part, which: 'scales', start: p.rowStart * scalesPerRow, end: p.rowStart * scalesPerRow + scalesBytes });
          }
          for (const which of ['data', 'scales'] as const) {
            const segs = which === 'data' ? t.data : (t.quant?.scales ?? []);
            let at = 0;
            for (const seg of segs) {
              const list = byShard.get(seg.shard) ?? [];
              list.push({ seg, at, jobs: jobs[which] });
              byShard.set(seg.shard, list);
              at += seg.byteLength;
              total += seg.byteLength;
            }
          }
        }
      } catch (e) {
        planError = e;
      }
    });
    if (planError) throw planError;

    const progress = new ProgressTracker({
      totalBytes: total, shardCount: files.manifest.shards.length, onProgress: opts.onProgress, intervalMs: opts.progressIntervalMs,
    });
    progress.phase('upload');
    const writer = new AlignedWriter((buf, off, bytes) => writeBuffer(gpu, buf, off, bytes));
    for (const shard of [...byShard.keys()].sort((a, b) => a - b)) {
      throwIfAborted(opts.signal);
      const bytes = await files.readShard(shard);
      throwIfAborted(opts.signal);
      for (const { seg, at, jobs } of byShard.get(shard)!) {
        if (seg.offset + seg.byteLength > bytes.byteLength) throw new FormatError(`segment beyond the end of shard ${shard}`);
        const segEnd = at + seg.byteLength;
        for (const j of jobs) {
          const lo = Math.max(at, j.start);
          const hi = Math.min(segEnd, j.end);
          if (lo >= hi) continue;
          const src = bytes.subarray(seg.offset + (lo - at), seg.offset + (hi - at));
          writer.put(j.which === 'data' ? j.part.data : j.part.scales!, lo - j.start, src);
        }
        progress.add('upload', shard, seg.byteLength);
      }
      // Let the queue drain its staging copies before the next shard is read.
      await gpu.device.queue.onSubmittedWorkDone();
      gpu.check();
      progress.add('upload', shard, 0, true);
    }
    writer.flush();
    await gpu.sync();
    progress.phase('done');
    return weights;
  } catch (e) {
    weights.destroy();
    if (opts.signal?.aborted && !(e instanceof AbortError)) throwIfAborted(opts.signal);
    throw e;
  }
}

/** The bytes of one tensor read from the cache on the CPU (tests, small tensors); see `ModelFiles.readTensor`. */
export function readTensor(files: ModelFiles, name: string, which: 'data' | 'scales' = 'data'): Promise<Uint8Array> {
  return files.readTensor(name, which);
}
