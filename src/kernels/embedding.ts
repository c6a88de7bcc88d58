/**
 * Token embedding gather: out[t, :] = table[ids[t], :] from a q4 (src/quant/q4.ts), f16 or f32
 * table, into f32 (or f16 with shader-f16) activations. A table larger than one storage binding
 * (131072 x 5120 f16 = 1.34 GB) is held as row parts (`splitRows`); the kernel is dispatched once
 * per part and each dispatch writes only the tokens whose row it holds.
 *
 * Out-of-range ids: ids coming from the host are validated here (`checkTokenIds`, KernelError).
 * On the GPU an id >= vocab never reads out of bounds: its output row is written as zeros.
 */
import { defineKernel, dispatch, grid, type BufferArg, type Ctx } from '../gpu/kernel.js';
import { BYTES, createBuffer, splitRows, writeBuffer, type Tensor } from '../gpu/tensor.js';
import type { Gpu } from '../gpu/device.js';
import { KernelError } from '../errors.js';
import { Q4_GROUP, type Q4Matrix } from '../quant/q4.js';
import type { SupportedType } from '../gguf/types.js';
import { ggufEmbed } from './gguf.js';
import source from '../../shaders/embedding.wgsl?raw';

const WG = 256;

/** `gguf`: rows in a ggml block format as a GGUF stores them (`blockType`; src/kernels/gguf.ts). */
export type TableDType = 'q4' | 'f16' | 'f32' | 'gguf';
type Act = 'f32' | 'f16';

/** One row range of the table in its own buffer(s). */
export interface TablePart {
  rowStart: number;
  rows: number;
  /** q4: qweight u32 [rows, cols/8]; f16: raw half bits [rows, cols]; f32: [rows, cols]. */
  data: BufferArg;
  /** q4 only: f16 scale bits [rows, cols/32]. */
  scales?: BufferArg;
}

/** An embedding table [rows = vocab, cols = hidden] as row parts covering 0..rows in order. */
export interface EmbeddingTable {
  dtype: TableDType;
  /** The ggml block format of a `gguf` table. */
  blockType?: SupportedType;
  rows: number;
  cols: number;
  parts: readonly TablePart[];
}

export const embeddingKernel = defineKernel({
  name: 'embedding',
  source,
  bindings: [
    { name: 'ids', access: 'read' },
    { name: 'out', access: 'write' },
    { name: 'table', access: 'read' },
  ],
  uniforms: { T: 'u32', H: 'u32', rowStart: 'u32', rows: 'u32', vocab: 'u32' },
  specialize: (k: { table: 'f16' | 'f32'; act: Act }) => ({
    defines: { F16: k.act === 'f16', TF16: k.table === 'f16' },
    overrides: { WG },
  }),
});

export const embeddingQ4Kernel = defineKernel({
  name: 'embedding_q4',
  source,
  bindings: [
    { name: 'ids', access: 'read' },
    { name: 'out', access: 'write' },
    { name: 'qweight', access: 'read' },
    { name: 'scales', access: 'read' },
  ],
  uniforms: { T: 'u32', H: 'u32', rowStart: 'u32', rows: 'u32', vocab: 'u32' },
  specialize: (k: { act: Act }) => ({ defines: { F16: k.act === 'f16', Q4: true }, overrides: { WG } }),
});

/** Bytes of one table row in the `data` buffer, and in the `scales` buffer (q4). */
export function tableRowBytes(dtype: Exclude<TableDType, 'gguf'>, cols: number): { data: number; scales: number } {
  if (dtype === 'q4') return { data: cols / 2, scales: (cols / Q4_GROUP) * 2 };
  return { data: cols * BYTES[dtype], scales: 0 };
}

/** Throws a KernelError naming the first id outside [0, vocab) (host-side ids: prompts, samples). */
export function checkTokenIds(ids: ArrayLike<number>, vocab: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new KernelError('embedding', `token id ${id} at position ${i} is outside the vocabulary [0, ${vocab})`);
    }
  }
}

export type HostTable =
  | { dtype: 'f32'; rows: number; cols: number; data: Float32Array } // [rows, cols]
  | { dtype: 'f16'; rows: number; cols: number; data: Uint16Array } // [rows, cols] half bits
  | { dtype: 'q4'; q: Q4Matrix };

/**
 * Uploads a host table as row parts no larger than `maxBindingBytes` (default: the adapter's
 * maxStorageBufferBindingSize; smaller values force a split, for tests).
 */
export function uploadEmbeddingTable(gpu: Gpu, host: HostTable, label = 'embedding', maxBindingBytes?: number): EmbeddingTable {
  const rows = host.dtype === 'q4' ? host.q.rows : host.rows;
  const cols = host.dtype === 'q4' ? host.q.cols : host.cols;
  const max = Math.min(maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize);
  const rb = tableRowBytes(host.dtype, cols);
  const parts: TablePart[] = [];
  for (const { rowStart, rows: n } of splitRows(rows, Math.max(rb.data, rb.scales), max)) {
    const name = `${label}[${rowStart}:${rowStart + n}]`;
    if (host.dtype === 'q4') {
      const wPerRow = cols / 8;
      const sPerRow = cols / Q4_GROUP;
      const data = createBuffer(gpu, n * rb.data, `${name}.qweight`);
      const scales = createBuffer(gpu, n * rb.scales, `${name}.scales`);
      writeBuffer(gpu, data, 0, host.q.qweight.subarray(rowStart * wPerRow, (rowStart + n) * wPerRow));
      writeBuffer(gpu, scales, 0, host.q.scales.subarray(rowStart * sPerRow, (rowStart + n) * sPerRow));
      parts.push({ rowStart, rows: n, data, scales });
    } else {
      const data = createBuffer(gpu, n * rb.data, name);
      writeBuffer(gpu, data, 0, host.data.subarray(rowStart * cols, (rowStart + n) * cols));
      parts.push({ rowStart, rows: n, data });
    }
  }
  return { dtype: host.dtype, rows, cols, parts };
}

function bindingBytes(b: BufferArg): number {
  if (b instanceof GPUBuffer) return b.size;
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

/**
 * out [T, cols] (f32, or f16 with shader-f16) = table[ids[t], :] for t < T.
 * ids: u32 [>= T] on the GPU; validate host ids with `checkTokenIds` before uploading them.
 */
export function embed(ctx: Ctx, table: EmbeddingTable, ids: Tensor, out: Tensor, T = ids.numel): void {
  if (table.dtype === 'gguf') {
    if (!table.blockType) throw new KernelError('embedding_gguf', 'a gguf table needs its blockType');
    const parts = table.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, data: p.data instanceof GPUBuffer ? p.data : p.data.buffer, dataRow: 0 }));
    ggufEmbed(ctx, { type: table.blockType, rows: table.rows, cols: table.cols, parts, label: 'embedding' }, ids, out, T);
    return;
  }
  const name = table.dtype === 'q4' ? 'embedding_q4' : 'embedding';
  const H = table.cols;
  if (ids.dtype !== 'u32') throw new KernelError(name, `ids must be u32, got ${ids.dtype}`);
  if (out.dtype !== 'f32' && out.dtype !== 'f16') throw new KernelError(name, `out must be f32 or f16, got ${out.dtype}`);
  if (out.dtype === 'f16' && !ctx.gpu.features.f16) throw new KernelError(name, 'f16 output needs shader-f16');
  if (!Number.isInteger(T) || T < 0 || T > ids.numel) throw new KernelError(name, `T=${T} exceeds ids [${ids.shape}]`);
  if (T * H > out.numel) throw new KernelError(name, `out [${out.shape}] is smaller than [${T}, ${H}]`);
  if (T * H >= 2 ** 32) throw new KernelError(name, `[${T}, ${H}] exceeds 2^32 elements`);
  if (table.dtype === 'q4' && H % Q4_GROUP) throw new KernelError(name, `q4 table cols ${H} not a multiple of ${Q4_GROUP}`);
  const rb = tableRowBytes(table.dtype, H);
  let next = 0;
  for (const part of table.parts) {
    if (part.rowStart !== next || part.rows < 1) {
      throw new KernelError(name, `table parts must cover rows 0..${table.rows} in order; got part at ${part.rowStart} (+${part.rows})`);
    }
    next += part.rows;
    if (bindingBytes(part.data) < part.rows * rb.data) {
      throw new KernelError(name, `part at row ${part.rowStart}: data binding ${bindingBytes(part.data)} B < ${part.rows * rb.data} B`);
    }
    if (table.dtype === 'q4' && (!part.scales || bindingBytes(part.scales) < part.rows * rb.scales)) {
      throw new KernelError(name, `part at row ${part.rowStart}: missing or short scales binding`);
    }
  }
  if (next !== table.rows) throw new KernelError(name, `table parts cover ${next} of ${table.rows} rows`);

  const workgroups = grid(Math.ceil((T * H) / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension);
  const act = out.dtype;
  for (const part of table.parts) {
    const uniforms = { T, H, rowStart: part.rowStart, rows: part.rows, vocab: table.rows };
    if (table.dtype === 'q4') {
      dispatch(ctx.gpu, ctx.pass, embeddingQ4Kernel, { act }, {
        buffers: [ids.buffer, out.buffer, part.data, part.scales!],
        uniforms,
        workgroups,
      });
    } else {
      dispatch(ctx.gpu, ctx.pass, embeddingKernel, { table: table.dtype, act }, {
        buffers: [ids.buffer, out.buffer, part.data],
        uniforms,
        workgroups,
      });
    }
  }
}

export function destroyEmbeddingTable(table: EmbeddingTable): void {
  for (const p of table.parts) {
    for (const b of [p.data, p.scales]) {
      if (!b) continue;
      (b instanceof GPUBuffer ? b : b.buffer).destroy();
    }
  }
}
