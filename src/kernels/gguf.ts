/**
 * Linear layers and embedding gathers whose weights stay in ggml's block formats exactly as the
 * GGUF stores them (never re-quantised): the weight as row parts (`GgufWeight`, each part's bytes
 * in one buffer, small enough to bind), the decode matrix-vector product (`ggufMatVec`), the
 * prefill matrix product (`ggufMatMul`) and the token embedding gather (`ggufEmbed`). The block
 * format is one knob (`type`) that becomes one define; the block decoding lives once, in
 * `shaders/gguf_blocks.wgsl`, appended to each op's shader.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, writeBuffer, type Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import { canUseSubgroups } from './q4.js';
import { blockShape, GGML_TYPE, type SupportedType } from '../gguf/types.js';
import blocksSource from '../../shaders/gguf_blocks.wgsl?raw';
import matvecSource from '../../shaders/gguf_matvec.wgsl?raw';
import matmulSource from '../../shaders/gguf_matmul.wgsl?raw';
import embeddingSource from '../../shaders/embedding.wgsl?raw';

/** One row range of a GGUF weight: its rows' bytes as stored, in one buffer (padded to 4). */
export interface GgufPart {
  rowStart: number;
  rows: number;
  data: GPUBuffer;
}

/** A weight W [rows, cols] in a ggml block format on the GPU, split by rows. */
export interface GgufWeight {
  type: SupportedType;
  rows: number; // N
  cols: number; // K
  parts: GgufPart[];
  label: string;
}

type Act = 'f32' | 'f16';

/** Bytes of one row of `cols` elements of `type`. */
export function ggufRowBytes(type: SupportedType, cols: number): number {
  const b = blockShape(GGML_TYPE[type])!;
  return (cols / b.elems) * b.bytes;
}

function checkCols(name: string, type: SupportedType, cols: number, label: string): void {
  const elems = blockShape(GGML_TYPE[type])!.elems;
  if (!(cols > 0) || cols % 32 !== 0 || cols % elems !== 0) {
    throw new KernelError(name, `${label}: K=${cols} must be a multiple of 32 and of the ${type} block (${elems})`);
  }
}

/**
 * Uploads a [rows, cols] weight from its stored bytes (rows in the engine's order), split so that
 * each part is at most `maxBindingBytes` (default: the device's binding limit; tests force splits).
 */
export function uploadGgufWeight(
  gpu: Gpu,
  type: SupportedType,
  rows: number,
  cols: number,
  bytes: Uint8Array,
  label: string,
  maxBindingBytes?: number,
): GgufWeight {
  checkCols('gguf', type, cols, label);
  const rb = ggufRowBytes(type, cols);
  if (bytes.byteLength !== rows * rb) {
    throw new KernelError('gguf', `${label}: ${bytes.byteLength} bytes, [${rows}, ${cols}] ${type} needs ${rows * rb}`);
  }
  // One spare word: an unaligned 4-byte read at a part's last bytes may touch the next word.
  const limit = Math.min(maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) - 8;
  const parts = splitRows(rows, rb, limit).map((p, i) => {
    const data = createBuffer(gpu, p.rows * rb + 4, `${label}[${i}]`);
    writeBuffer(gpu, data, 0, bytes.subarray(p.rowStart * rb, (p.rowStart + p.rows) * rb));
    return { ...p, data };
  });
  return { type, rows, cols, parts, label };
}

export function destroyGgufWeight(w: GgufWeight): void {
  for (const p of w.parts) p.data.destroy();
}

/** The format define of a type: W_Q4_K, W_F16, ... */
function formatDefine(type: SupportedType): Record<string, boolean> {
  return { [`W_${type}`]: true };
}

/**
 * Work split of the matrix-vector kernel (the knobs of q4's, same meanings): WG threads, TPR
 * threads per block of 4 rows, `subgroups`: subgroupAdd in the reduction (TPR > 1, subgroups no
 * wider than TPR), `intcvt`: 4-bit quants become floats by an int conversion (CPUs) instead of
 * the 2^23 bit trick (GPUs).
 */
export interface GgufMatVecConfig {
  wg: number;
  tpr: number;
  subgroups?: boolean;
  intcvt?: boolean;
}

/** CPU adapters: a thread streams 4 whole rows; GPUs: 32 threads read consecutive chunks, as q4. */
export function defaultGgufMatVecConfig(gpu: Gpu): GgufMatVecConfig {
  if (gpu.isSoftware) return { wg: 64, tpr: 1, subgroups: false, intcvt: true };
  return { wg: 128, tpr: 32, subgroups: canUseSubgroups(gpu, 32), intcvt: false };
}

type MatVecKnobs = { type: SupportedType; dtype: Act; wg: number; tpr: number; subgroups: boolean; intcvt: boolean; residual: boolean };

export const ggufMatVecKernel = defineKernel({
  name: 'gguf_matvec',
  source: `${matvecSource}\n${blocksSource}`,
  bindings: [
    { name: 'wq', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { K: 'u32', rows: 'u32', yOffset: 'u32' },
  specialize: (k: MatVecKnobs) => ({
    // Q4_K rows are whole 16-byte units (144-byte blocks): the weight is read as vec4<u32>.
    defines: { F16: k.dtype === 'f16', SUBGROUPS: k.subgroups, WQ4: k.type === 'Q4_K', RESIDUAL: k.residual, ...formatDefine(k.type) },
    overrides: { WG: k.wg, TPR: k.tpr, INTCVT: k.intcvt ? 1 : 0 },
  }),
});

export const ggufMatMulKernel = defineKernel({
  name: 'gguf_matmul',
  source: `${matmulSource}\n${blocksSource}`,
  bindings: [
    { name: 'wq', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { M: 'u32', K: 'u32', rows: 'u32', ldy: 'u32', yCol: 'u32' },
  specialize: (k: { type: SupportedType; dtype: Act }) => ({ defines: { F16: k.dtype === 'f16', ...formatDefine(k.type) } }),
});

const EMBED_WG = 256;

export const ggufEmbeddingKernel = defineKernel({
  name: 'embedding_gguf',
  source: `${embeddingSource}\n${blocksSource}`,
  bindings: [
    { name: 'ids', access: 'read' },
    { name: 'out', access: 'write' },
    { name: 'wq', access: 'read' },
  ],
  uniforms: { T: 'u32', H: 'u32', rowStart: 'u32', rows: 'u32', vocab: 'u32' },
  specialize: (k: { type: SupportedType; act: Act }) => ({
    defines: { F16: k.act === 'f16', GGUF: true, ...formatDefine(k.type) },
    overrides: { WG: EMBED_WG },
  }),
});

/** Rows of Y per matmul workgroup tile, and weight rows per tile. */
export const GGUF_MATMUL_TILE = 64;

function checkAct(name: string, x: Tensor, y: Tensor): Act {
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) {
    throw new KernelError(name, `dtypes x ${x.dtype}, y ${y.dtype}: need both f32 or both f16`);
  }
  return x.dtype;
}

/**
 * y [yOffset + n] = sum_k W [n, k] x [k] for n < W.rows (decode, batch 1); with `residual`,
 * y [yOffset + n] += that sum (rounded to y's dtype first: bit-identical to a matvec into scratch
 * and `addInPlace`). x: [>= K] f32 or f16; y: the same dtype, [>= yOffset + N].
 */
export function ggufMatVec(
  ctx: Ctx,
  w: GgufWeight,
  x: Tensor,
  y: Tensor,
  opts: { yOffset?: number; config?: GgufMatVecConfig; residual?: boolean } = {},
): void {
  const name = 'gguf_matvec';
  const dtype = checkAct(name, x, y);
  const yOffset = opts.yOffset ?? 0;
  if (x.numel < w.cols) throw new KernelError(name, `x [${x.shape}] shorter than K=${w.cols} of ${w.label}`);
  if (y.numel < yOffset + w.rows) throw new KernelError(name, `y [${y.shape}] shorter than ${yOffset} + N=${w.rows} of ${w.label}`);
  const c = opts.config ?? defaultGgufMatVecConfig(ctx.gpu);
  const pow2 = (v: number) => v > 0 && (v & (v - 1)) === 0;
  if (!pow2(c.wg) || !pow2(c.tpr) || c.wg % c.tpr !== 0) throw new KernelError(name, `bad config wg=${c.wg} tpr=${c.tpr}`);
  const subgroups = !!c.subgroups;
  if (subgroups && !canUseSubgroups(ctx.gpu, c.tpr)) {
    throw new KernelError(name, `subgroup reduction needs the feature and subgroups of at most tpr=${c.tpr} lanes`);
  }
  const rowsPerWg = (4 * c.wg) / c.tpr;
  const knobs = { type: w.type, dtype, wg: c.wg, tpr: c.tpr, subgroups, intcvt: !!c.intcvt, residual: !!opts.residual };
  for (const part of w.parts) {
    dispatch(ctx.gpu, ctx.pass, ggufMatVecKernel, knobs, {
      buffers: [part.data, x.buffer, y.buffer],
      uniforms: { K: w.cols, rows: part.rows, yOffset: yOffset + part.rowStart },
      workgroups: grid(Math.ceil(part.rows / rowsPerWg), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
  }
}

/**
 * Y [m, n] = sum_k X [m, k] W [n, k] for m < M, n < W.rows (prefill).
 * X: [M, K] row-major, f32 or f16; Y: the same dtype, [M, N] row-major.
 */
export function ggufMatMul(ctx: Ctx, w: GgufWeight, x: Tensor, y: Tensor, M: number): void {
  const name = 'gguf_matmul';
  const dtype = checkAct(name, x, y);
  if (!(M > 0) || !Number.isInteger(M)) throw new KernelError(name, `M=${M}`);
  if (x.numel < M * w.cols) throw new KernelError(name, `X [${x.shape}] smaller than [${M}, ${w.cols}]`);
  if (y.numel < M * w.rows) throw new KernelError(name, `Y [${y.shape}] smaller than [${M}, ${w.rows}]`);
  const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
  const tilesM = Math.ceil(M / GGUF_MATMUL_TILE);
  if (tilesM > max) throw new KernelError(name, `M=${M} needs ${tilesM} > ${max} workgroup rows`);
  for (const part of w.parts) {
    dispatch(ctx.gpu, ctx.pass, ggufMatMulKernel, { type: w.type, dtype }, {
      buffers: [part.data, x.buffer, y.buffer],
      uniforms: { M, K: w.cols, rows: part.rows, ldy: w.rows, yCol: part.rowStart },
      workgroups: [Math.ceil(part.rows / GGUF_MATMUL_TILE), tilesM],
    });
  }
}

/**
 * out [T, cols] (f32, or f16 with shader-f16) = table[ids[t], :] for t < T, the table a GGUF
 * weight [vocab, hidden]. ids: u32 [>= T] on the GPU (validate host ids with `checkTokenIds`);
 * an id >= vocab gets a zero row, as in `embed`.
 */
export function ggufEmbed(ctx: Ctx, table: GgufWeight, ids: Tensor, out: Tensor, T = ids.numel): void {
  const name = 'embedding_gguf';
  const H = table.cols;
  if (ids.dtype !== 'u32') throw new KernelError(name, `ids must be u32, got ${ids.dtype}`);
  if (out.dtype !== 'f32' && out.dtype !== 'f16') throw new KernelError(name, `out must be f32 or f16, got ${out.dtype}`);
  if (out.dtype === 'f16' && !ctx.gpu.features.f16) throw new KernelError(name, 'f16 output needs shader-f16');
  if (!Number.isInteger(T) || T < 0 || T > ids.numel) throw new KernelError(name, `T=${T} exceeds ids [${ids.shape}]`);
  if (T * H > out.numel) throw new KernelError(name, `out [${out.shape}] is smaller than [${T}, ${H}]`);
  if (T * H >= 2 ** 32) throw new KernelError(name, `[${T}, ${H}] exceeds 2^32 elements`);
  const workgroups = grid(Math.ceil((T * H) / EMBED_WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension);
  for (const part of table.parts) {
    dispatch(ctx.gpu, ctx.pass, ggufEmbeddingKernel, { type: table.type, act: out.dtype }, {
      buffers: [ids.buffer, out.buffer, part.data],
      uniforms: { T, H, rowStart: part.rowStart, rows: part.rows, vocab: table.rows },
      workgroups,
    });
  }
}
