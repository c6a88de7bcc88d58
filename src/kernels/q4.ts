/**
 * 4-bit (q4g32, `src/quant/q4.ts`) linear layers on the GPU: the weight as row parts
 * (`Q4Weight`, each part small enough to bind), its upload, the decode matrix-vector product
 * (`q4MatVec`, batch 1, bandwidth bound) and the prefill matrix-matrix product (`q4MatMul`,
 * tiled). Both dispatch once per row part and write their rows at an output offset.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, writeBuffer, type Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import { Q4_GROUP, q4Supported, type Q4Matrix } from '../quant/q4.js';
import matvecSource from '../../shaders/q4_matvec.wgsl?raw';
import matmulSource from '../../shaders/q4_matmul.wgsl?raw';

/** One row range of a q4 weight in its own pair of buffers. */
export interface Q4Part {
  rowStart: number;
  rows: number;
  /** [rows, K/8] u32: 8 nibbles per word, low first. */
  qweight: GPUBuffer;
  /** [rows, K/32] f16 bits (size rounded up to 4 bytes). */
  scales: GPUBuffer;
}

/** A q4 weight W [rows, cols] on the GPU, split by rows so no part exceeds the binding limit. */
export interface Q4Weight {
  rows: number; // N
  cols: number; // K
  parts: Q4Part[];
  label: string;
}

/** Bytes of one row of a part's `qweight` and `scales`. */
function rowBytes(cols: number): { qweight: number; scales: number } {
  return { qweight: cols / 2, scales: (cols / Q4_GROUP) * 2 };
}

/**
 * Allocates the buffers of a [rows, cols] q4 weight, split so that each part's qweight binding
 * (the larger of the two) is at most `maxBindingBytes` (default: the device's
 * `maxStorageBufferBindingSize`; tests pass a small value to force splitting).
 */
export function allocQ4(gpu: Gpu, rows: number, cols: number, label: string, maxBindingBytes?: number): Q4Weight {
  if (!q4Supported(cols)) throw new KernelError('q4', `${label}: K=${cols} is not a multiple of ${Q4_GROUP}`);
  if (!(rows > 0)) throw new KernelError('q4', `${label}: ${rows} rows`);
  const limit = Math.min(maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const bytes = rowBytes(cols);
  const parts = splitRows(rows, bytes.qweight, limit).map((p, i) => ({
    ...p,
    qweight: createBuffer(gpu, p.rows * bytes.qweight, `${label}.qweight[${i}]`),
    scales: createBuffer(gpu, p.rows * bytes.scales, `${label}.scales[${i}]`),
  }));
  return { rows, cols, parts, label };
}

/** Uploads a CPU-quantised matrix (see `allocQ4` for `maxBindingBytes`). */
export function uploadQ4(gpu: Gpu, m: Q4Matrix, label: string, maxBindingBytes?: number): Q4Weight {
  if (m.qweight.length !== (m.rows * m.cols) / 8 || m.scales.length !== (m.rows * m.cols) / Q4_GROUP) {
    throw new KernelError('q4', `${label}: qweight/scales lengths do not match [${m.rows}, ${m.cols}]`);
  }
  const w = allocQ4(gpu, m.rows, m.cols, label, maxBindingBytes);
  const words = m.cols / 8;
  const groups = m.cols / Q4_GROUP;
  for (const p of w.parts) {
    writeBuffer(gpu, p.qweight, 0, m.qweight.subarray(p.rowStart * words, (p.rowStart + p.rows) * words));
    writeBuffer(gpu, p.scales, 0, m.scales.subarray(p.rowStart * groups, (p.rowStart + p.rows) * groups));
  }
  return w;
}

export function destroyQ4(w: Q4Weight): void {
  for (const p of w.parts) {
    p.qweight.destroy();
    p.scales.destroy();
  }
}

/** Work split of the matrix-vector kernel (see shaders/q4_matvec.wgsl). */
export interface Q4MatVecConfig {
  /** Workgroup size. */
  wg: number;
  /** Threads per 4-row block: 1, or a power of two >= 4 that divides `wg`. */
  tpr: number;
  /** Reduce with subgroupAdd (needs the feature and subgroups no wider than `tpr`). */
  subgroups: boolean;
  /** Two groups per loop iteration (more loads in flight: GPUs), else one (CPU JITs). */
  pairs: boolean;
  /** Nibbles to floats by signed int conversion (cheap on CPUs) instead of the 2^23 bit trick. */
  intcvt: boolean;
}

/**
 * Defaults per adapter. On CPU adapters (SwiftShader) a thread streaming 4 whole rows with no
 * reduction is fastest; on GPUs 32 threads read consecutive 16-byte groups of each row.
 */
export function defaultQ4MatVecConfig(gpu: Gpu): Q4MatVecConfig {
  if (gpu.adapterInfo.architecture === 'swiftshader') return { wg: 64, tpr: 1, subgroups: false, pairs: false, intcvt: true };
  // Best on an H100 (bench section q4tune): 32 threads per block, 4 blocks per workgroup.
  const tpr = 32;
  return { wg: 128, tpr, subgroups: canUseSubgroups(gpu, tpr), pairs: true, intcvt: false };
}

/** subgroupAdd partial sums stay within one block only if subgroups are at most `tpr` wide. */
export function canUseSubgroups(gpu: Gpu, tpr: number): boolean {
  const max = (gpu.adapterInfo as GPUAdapterInfo & { subgroupMaxSize?: number }).subgroupMaxSize;
  return gpu.features.subgroups && tpr > 1 && max !== undefined && max <= tpr;
}

type Act = 'f32' | 'f16';

export const q4MatVecKernel = defineKernel({
  name: 'q4_matvec',
  source: matvecSource,
  bindings: [
    { name: 'qweight', access: 'read' },
    { name: 'scales', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { K: 'u32', G: 'u32', rows: 'u32', yOffset: 'u32' },
  specialize: (k: { dtype: Act; wg: number; tpr: number; subgroups: boolean; pairs: boolean; intcvt: boolean }) => ({
    defines: { F16: k.dtype === 'f16', SUBGROUPS: k.subgroups },
    overrides: { WG: k.wg, TPR: k.tpr, PAIRS: k.pairs ? 1 : 0, INTCVT: k.intcvt ? 1 : 0 },
  }),
});

export const q4MatMulKernel = defineKernel({
  name: 'q4_matmul',
  source: matmulSource,
  bindings: [
    { name: 'qweight', access: 'read' },
    { name: 'scales', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { M: 'u32', K: 'u32', G: 'u32', rows: 'u32', ldy: 'u32', yCol: 'u32' },
  specialize: (k: { dtype: Act }) => ({ defines: { F16: k.dtype === 'f16' } }),
});

/** Rows of Y per matmul workgroup tile, and weight rows per tile. */
export const Q4_MATMUL_TILE = 64;

function checkAct(name: string, x: Tensor, y: Tensor): Act {
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) {
    throw new KernelError(name, `dtypes x ${x.dtype}, y ${y.dtype}: need both f32 or both f16`);
  }
  return x.dtype;
}

function checkConfig(c: Q4MatVecConfig): void {
  const pow2 = (v: number) => v > 0 && (v & (v - 1)) === 0;
  if (!pow2(c.wg) || !(c.tpr === 1 || (pow2(c.tpr) && c.tpr >= 4)) || c.wg % c.tpr !== 0 || (c.subgroups && c.tpr === 1)) {
    throw new KernelError('q4_matvec', `bad config wg=${c.wg} tpr=${c.tpr} subgroups=${c.subgroups} pairs=${c.pairs} intcvt=${c.intcvt}`);
  }
}

/**
 * y [yOffset + n] = sum_k W [n, k] x [k] for n < W.rows (decode, batch 1).
 * x: [>= K] f32 or f16; y: the same dtype, [>= yOffset + N].
 */
export function q4MatVec(
  ctx: Ctx,
  w: Q4Weight,
  x: Tensor,
  y: Tensor,
  opts: { yOffset?: number; config?: Q4MatVecConfig } = {},
): void {
  const dtype = checkAct('q4_matvec', x, y);
  const yOffset = opts.yOffset ?? 0;
  if (x.numel < w.cols) throw new KernelError('q4_matvec', `x [${x.shape}] shorter than K=${w.cols} of ${w.label}`);
  if (y.numel < yOffset + w.rows) {
    throw new KernelError('q4_matvec', `y [${y.shape}] shorter than ${yOffset} + N=${w.rows} of ${w.label}`);
  }
  const config = opts.config ?? defaultQ4MatVecConfig(ctx.gpu);
  checkConfig(config);
  if (config.subgroups && !canUseSubgroups(ctx.gpu, config.tpr)) {
    throw new KernelError('q4_matvec', `subgroup reduction needs the feature and subgroups of at most tpr=${config.tpr} lanes`);
  }
  const rowsPerWg = (4 * config.wg) / config.tpr;
  for (const part of w.parts) {
    dispatch(ctx.gpu, ctx.pass, q4MatVecKernel, { dtype, ...config }, {
      buffers: [part.qweight, part.scales, x.buffer, y.buffer],
      uniforms: { K: w.cols, G: w.cols / Q4_GROUP, rows: part.rows, yOffset: yOffset + part.rowStart },
      workgroups: grid(Math.ceil(part.rows / rowsPerWg), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
  }
}

/**
 * Y [m, n] = sum_k X [m, k] W [n, k] for m < M, n < W.rows (prefill).
 * X: [M, K] row-major, f32 or f16; Y: the same dtype, [M, N] row-major.
 */
export function q4MatMul(ctx: Ctx, w: Q4Weight, x: Tensor, y: Tensor, M: number): void {
  const dtype = checkAct('q4_matmul', x, y);
  if (!(M > 0) || !Number.isInteger(M)) throw new KernelError('q4_matmul', `M=${M}`);
  if (x.numel < M * w.cols) throw new KernelError('q4_matmul', `X [${x.shape}] smaller than [${M}, ${w.cols}]`);
  if (y.numel < M * w.rows) throw new KernelError('q4_matmul', `Y [${y.shape}] smaller than [${M}, ${w.rows}]`);
  const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
  const tilesM = Math.ceil(M / Q4_MATMUL_TILE);
  if (tilesM > max) throw new KernelError('q4_matmul', `M=${M} needs ${tilesM} > ${max} workgroup rows`);
  for (const part of w.parts) {
    dispatch(ctx.gpu, ctx.pass, q4MatMulKernel, { dtype }, {
      buffers: [part.qweight, part.scales, x.buffer, y.buffer],
      uniforms: { M, K: w.cols, G: w.cols / Q4_GROUP, rows: part.rows, ldy: w.rows, yCol: part.rowStart },
      workgroups: [Math.ceil(part.rows / Q4_MATMUL_TILE), tilesM],
    });
  }
}
