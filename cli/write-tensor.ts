/**
 * Converts one tensor into the shards, a row chunk at a time: read the chunk's source bytes,
 * decode to f32, reorder q/k rows if needed, encode, append. Memory is bounded by the chunk size,
 * not the tensor: a 131072 x 5120 bf16 embedding (1.3 GB) goes through in ~64 MB steps. A q4
 * tensor's scales must follow all its packed weights, so they are spilled to a temp file while
 * the weights stream and appended afterwards.
 */
import { open, rm } from 'node:fs/promises';
import type { StoredDType, TensorEntry } from '../src/weights/manifest.js';
import { Q4_FORMAT, Q4_GROUP } from '../src/quant/q4.js';
import { decodeToF32, encodeF16, encodeF32, encodeQ4, permuteForRope } from './encode.js';
import type { PlannedTensor } from './plan.js';
import type { ShardWriter } from './shard-writer.js';
import { itemSize } from './safetensors.js';

/**
 * Reusable chunk buffers, grown on demand and shared by all tensors of a conversion, so the
 * steady state allocates nothing large per chunk (only quantizeQ4's outputs).
 */
export class Scratch {
  private src = new ArrayBuffer(0);
  private f32a = new ArrayBuffer(0);
  private f32b = new ArrayBuffer(0);
  private u16 = new ArrayBuffer(0);

  private static grow(buf: ArrayBuffer, bytes: number): ArrayBuffer {
    return buf.byteLength >= bytes ? buf : new ArrayBuffer(bytes);
  }
  sourceBytes(n: number): Uint8Array {
    this.src = Scratch.grow(this.src, n);
    return new Uint8Array(this.src, 0, n);
  }
  decoded(n: number): Float32Array {
    this.f32a = Scratch.grow(this.f32a, n * 4);
    return new Float32Array(this.f32a, 0, n);
  }
  permuted(n: number): Float32Array {
    this.f32b = Scratch.grow(this.f32b, n * 4);
    return new Float32Array(this.f32b, 0, n);
  }
  half(n: number): Uint16Array {
    this.u16 = Scratch.grow(this.u16, n * 2);
    return new Uint16Array(this.u16, 0, n);
  }
}

export interface WriteTensorOptions {
  dtype: StoredDType;
  /** Upper bound on one chunk's f32 size (the largest transient buffer). */
  chunkBytes: number;
  /** Scratch file for q4 scales (inside the temp output folder). */
  spillPath: string;
  /** Called after each chunk with the source bytes it consumed. */
  onChunk: (sourceBytes: number) => void;
  scratch: Scratch;
  signal?: AbortSignal;
}

/** Rows per chunk: within the byte budget, whole RoPE heads when rows get reordered. */
export function chunkRows(rows: number, cols: number, chunkBytes: number, rowMultiple: number): number {
  let n = Math.max(1, Math.floor(chunkBytes / (cols * 4)));
  n = Math.max(rowMultiple, n - (n % rowMultiple));
  return Math.min(rows, n);
}

export async function writeTensor(p: PlannedTensor, shards: ShardWriter, o: WriteTensorOptions): Promise<TensorEntry> {
  const { source: src, expected: e } = p;
  const shape = e.shape;
  const rows = shape.length > 1 ? shape[0]! : 1;
  const cols = src.byteLength / itemSize(src.dtype)! / rows;
  const rowMultiple = p.permuteRope ? e.rope!.headDim : 1;
  const step = chunkRows(rows, cols, o.chunkBytes, rowMultiple);
  const srcRowBytes = cols * itemSize(src.dtype)!;

  const spill = o.dtype === 'q4' ? await open(o.spillPath, 'w+') : undefined;
  let spilled = 0;
  try {
    await shards.begin();
    for (let r = 0; r < rows; r += step) {
      o.signal?.throwIfAborted();
      const n = Math.min(step, rows - r);
      const count = n * cols;
      const bytes = o.scratch.sourceBytes(n * srcRowBytes);
      await src.file.readInto(src, r * srcRowBytes, bytes);
      let v = decodeToF32(bytes, src.dtype, o.scratch.decoded(count));
      if (p.permuteRope) v = permuteForRope(v, n, cols, e.rope!.headDim, o.scratch.permuted(count));
      if (o.dtype === 'q4') {
        const q = encodeQ4(v, n, cols);
        await shards.write(q.qweight);
        await spill!.write(q.scales, 0, q.scales.length, spilled);
        spilled += q.scales.length;
      } else {
        await shards.write(o.dtype === 'f16' ? encodeF16(v, o.scratch.half(count)) : encodeF32(v));
      }
      o.onChunk(bytes.length);
    }
    const data = shards.end();
    if (!spill) return { name: e.name, dtype: o.dtype, shape, data };

    await shards.begin();
    const buf = o.scratch.sourceBytes(Math.min(spilled, 16 << 20)); // the row loop is done with it
    for (let pos = 0; pos < spilled; ) {
      const { bytesRead } = await spill.read(buf, 0, Math.min(buf.length, spilled - pos), pos);
      if (bytesRead === 0) throw new Error(`${e.name}: scale spill file ended early`);
      await shards.write(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const scales = shards.end();
    return { name: e.name, dtype: 'q4', shape, data, quant: { format: Q4_FORMAT, groupSize: Q4_GROUP, scales } };
  } finally {
    if (spill) {
      await spill.close();
      await rm(o.spillPath, { force: true });
    }
  }
}
