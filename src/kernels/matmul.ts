/**
 * Dense matrix multiplication for the vision encoder, the patch embedding and the projector:
 * `Y[M, N] = X[M, K] @ W[N, K]^T (+ bias[N])`, W in PyTorch Linear layout [out, in].
 *
 * Activations (X, Y) are f32, or f16 on devices with `shader-f16`. Weights are f32 or f16; f16
 * weights are always read as packed `u32` pairs with `unpack2x16float`, so they work on f32-only
 * devices too (`WEIGHT_F16` is independent of the activation `F16` define). Accumulation is f32.
 *
 * A weight larger than one storage binding is held as row parts (`splitRows`); each part is one
 * dispatch writing its own column range of Y. `uploadWeight` builds such a weight from host data.
 * On GPUs whose subgroup-matrix check passed, products without a bias (every linear of the vision
 * encoder) run on the matrix units: GGUF's subgroup-matrix kernel reading the f16 / f32 rows as
 * ggml's F16 / F32 formats (the same bytes), f16 operands, f32 sums.
 */
import { defineKernel, dispatch, type Ctx } from '../gpu/kernel.js';
import { align4, BYTES, createBuffer, splitRows, writeBuffer, type Tensor } from '../gpu/tensor.js';
import type { Gpu } from '../gpu/device.js';
import { KernelError } from '../errors.js';
import { toF16 } from '../util/f16.js';
import source from '../../shaders/matmul.wgsl?raw';
import { subgroupMatrixTile, subgroupMatrixToRun, type SubgroupMatrixShape } from './subgroup-matrix.js';
import { ggufMatMulSubgroupMatrixKernel } from './gguf.js';

/** Output tile side of the shader (64 x 64 per workgroup). */
export const MATMUL_TILE = 64;

export type ActDtype = 'f32' | 'f16';
export type WeightDtype = 'f32' | 'f16';

export type MatmulKnobs = {
  act: ActDtype;
  weight: WeightDtype;
  /** 'none' or the bias dtype. */
  bias: 'none' | WeightDtype;
  /** K % 4 == 0: vectorised loads along K. */
  vec4: boolean;
};

const uniforms = { M: 'u32', N: 'u32', K: 'u32', ldy: 'u32', colOffset: 'u32' } as const;
const specialize = (k: MatmulKnobs) => ({
  defines: {
    F16: k.act === 'f16',
    WEIGHT_F16: k.weight === 'f16',
    HAS_BIAS: k.bias !== 'none',
    BIAS_F16: k.bias === 'f16',
    VEC4: k.vec4,
  },
});

export const matmulKernel = defineKernel({
  name: 'matmul',
  source,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms,
  specialize,
});

/** The same shader with HAS_BIAS: one more storage binding. */
export const matmulBiasKernel = defineKernel({
  name: 'matmul_bias',
  source,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    { name: 'y', access: 'write' },
    { name: 'bias', access: 'read' },
  ],
  uniforms,
  specialize,
});

/** Rows `rowStart .. rowStart + rows - 1` of a weight matrix, in their own buffer. */
export interface WeightPart {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

/** A [N, K] weight (PyTorch [out, in]) held as one or more row parts. */
export interface MatWeight {
  shape: readonly [number, number];
  dtype: WeightDtype;
  parts: readonly WeightPart[];
  label: string;
}

/** Views a single-buffer [N, K] Tensor (f32 or f16) as a MatWeight. */
export function asMatWeight(t: Tensor): MatWeight {
  if (t.shape.length !== 2 || (t.dtype !== 'f32' && t.dtype !== 'f16')) {
    throw new KernelError('matmul', `${t.label}: weight must be a 2-D f32/f16 tensor, got [${t.shape}] ${t.dtype}`);
  }
  const [n, k] = t.shape as [number, number];
  return { shape: [n, k], dtype: t.dtype, parts: [{ buffer: t.buffer, rowStart: 0, rows: n }], label: t.label };
}

/**
 * Uploads a [N, K] weight. `data` is f32 values (converted to half when `dtype` is 'f16') or raw
 * f16 bits (`Uint16Array`, dtype 'f16'). Rows are split into parts that each fit one storage
 * binding (`maxPartBytes`, default the adapter's `maxStorageBufferBindingSize`).
 */
export function uploadWeight(
  gpu: Gpu,
  data: Float32Array | Uint16Array,
  shape: readonly [number, number],
  dtype: WeightDtype,
  label = 'weight',
  maxPartBytes = gpu.limits.maxStorageBufferBindingSize,
): MatWeight {
  const [n, k] = shape;
  if (data.length !== n * k) throw new KernelError('matmul', `${label}: ${data.length} values for shape [${n}, ${k}]`);
  if (data instanceof Uint16Array && dtype !== 'f16') {
    throw new KernelError('matmul', `${label}: Uint16Array data is f16 bits but dtype is ${dtype}`);
  }
  const host = dtype === 'f16' && data instanceof Float32Array ? toF16(data) : data;
  const rowBytes = k * BYTES[dtype];
  const parts = splitRows(n, rowBytes, maxPartBytes).map(({ rowStart, rows }) => {
    const buffer = createBuffer(gpu, rows * rowBytes, `${label}[${rowStart}:${rowStart + rows}]`);
    writeBuffer(gpu, buffer, 0, host.subarray(rowStart * k, (rowStart + rows) * k));
    return { buffer, rowStart, rows };
  });
  return { shape: [n, k], dtype, parts, label };
}

export function destroyWeight(w: MatWeight): void {
  for (const p of w.parts) p.buffer.destroy();
}

export interface MatmulOptions {
  /** [N] f32 or f16, added to every row. */
  bias?: Tensor;
  /** Rows of X to use (default all: numel / K). Y must hold at least M rows. */
  M?: number;
  /**
   * `subgroupMatrix` (the adapter's matrix units, f16 operands: needs no bias and K % 32 == 0) or
   * `tiled`; the default is `subgroupMatrix` where the device's check made it the default
   * (`checkSubgroupMatrix`) and the product qualifies, else `tiled`.
   */
  variant?: 'tiled' | 'subgroupMatrix';
  /** The subgroup-matrix shape to run (default: the device's checked one). */
  shape?: SubgroupMatrixShape;
  /**
   * First row of X read and first row of Y written (default 0): a window of rows of larger
   * activations, e.g. an MLP run over row chunks so its [rows, I] intermediate stays small. Bound
   * at that byte offset, so row offset x row bytes must be a multiple of the adapter's
   * `minStorageBufferOffsetAlignment` (`rowAlignment` gives the row step that always is).
   */
  xRowOffset?: number;
  yRowOffset?: number;
}

/** Smallest row step r such that r x `cols` elements of `dtype` is a valid storage binding offset. */
export function rowAlignment(gpu: Gpu, cols: number, dtype: ActDtype = 'f32'): number {
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const rowBytes = cols * BYTES[dtype];
  let a = align;
  let b = rowBytes;
  while (b) [a, b] = [b, a % b];
  return align / a;
}

/**
 * y [M, N] = x [M, K] @ w [N, K]^T (+ bias [N]). x and y: same activation dtype (f32, or f16
 * with shader-f16); x may have any leading shape whose trailing dimension is K.
 */
export function matmul(ctx: Ctx, x: Tensor, weight: MatWeight | Tensor, y: Tensor, opts: MatmulOptions = {}): void {
  const { gpu } = ctx;
  const w = 'parts' in weight ? weight : asMatWeight(weight);
  const [N, K] = w.shape;
  const fail = (msg: string): never => {
    throw new KernelError('matmul', `${x.label} @ ${w.label}^T -> ${y.label}: ${msg}`);
  };
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) fail(`activation dtypes ${x.dtype} -> ${y.dtype} unsupported`);
  if (x.shape[x.shape.length - 1] !== K) fail(`x [${x.shape}] does not end in K=${K}`);
  if (y.shape[y.shape.length - 1] !== N) fail(`y [${y.shape}] does not end in N=${N}`);
  const xr = opts.xRowOffset ?? 0;
  const yr = opts.yRowOffset ?? 0;
  const M = opts.M ?? x.numel / K - xr;
  if (!Number.isInteger(M) || M < 0 || (xr + M) * K > x.numel || (yr + M) * N > y.numel) {
    fail(`M=${M} rows from row ${xr} of x [${x.shape}] / row ${yr} of y [${y.shape}] do not fit`);
  }
  const xOff = xr * K * BYTES[x.dtype];
  const yOff = yr * N * BYTES[y.dtype];
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  if (!Number.isInteger(xr) || !Number.isInteger(yr) || xOff % align || yOff % align) {
    fail(`row offsets x ${xr} / y ${yr} are not multiples of ${align} bytes (minStorageBufferOffsetAlignment)`);
  }
  const bias = opts.bias;
  if (bias && (bias.numel !== N || (bias.dtype !== 'f32' && bias.dtype !== 'f16'))) {
    fail(`bias [${bias.shape}] ${bias.dtype} must be [${N}] f32 or f16`);
  }
  const maxBind = gpu.limits.maxStorageBufferBindingSize;
  for (const t of [x, y]) if (t.byteLength > maxBind) fail(`${t.label} (${t.byteLength} bytes) exceeds the binding limit ${maxBind}`);
  let covered = 0;
  for (const part of w.parts) {
    const bytes = part.rows * K * BYTES[w.dtype];
    if (bytes > maxBind) {
      fail(`weight part rows ${part.rowStart}+${part.rows} is ${bytes} bytes, over the binding limit ${maxBind}: split it with splitRows / uploadWeight`);
    }
    if (part.rowStart !== covered) fail(`weight parts are not contiguous at row ${part.rowStart}`);
    covered += part.rows;
  }
  if (covered !== N) fail(`weight parts cover ${covered} of ${N} rows`);
  const shape = subgroupMatrixToRun(gpu, 'matmul', opts, bias || K % 32 ? 'needs no bias and K % 32 == 0' : null);
  if (M === 0) return;
  // Bind only the bytes used: activations are often views of a larger buffer (`Tensor.view`).
  const xb = { buffer: x.buffer, offset: xOff, size: align4(M * K * BYTES[x.dtype]) };
  const yb = { buffer: y.buffer, offset: yOff, size: align4(M * N * BYTES[y.dtype]) };
  if (shape) {
    const tile = subgroupMatrixTile(shape);
    for (const part of w.parts) {
      const wb = { buffer: part.buffer, size: align4(part.rows * K * BYTES[w.dtype]) };
      const type = w.dtype === 'f16' ? 'F16' : 'F32';
      dispatch(gpu, ctx.pass, ggufMatMulSubgroupMatrixKernel, { type, dtype: x.dtype as ActDtype, ...shape }, {
        buffers: [wb, xb, yb],
        uniforms: { M, K, rows: part.rows, ldy: N, yCol: part.rowStart, rowBase: 0 },
        workgroups: [Math.ceil(part.rows / tile), Math.ceil(M / tile)],
      });
    }
    return;
  }
  const knobs: MatmulKnobs = { act: x.dtype as ActDtype, weight: w.dtype, bias: bias ? (bias.dtype as WeightDtype) : 'none', vec4: K % 4 === 0 };
  const bb = bias && { buffer: bias.buffer, size: align4(N * BYTES[bias.dtype]) };
  for (const part of w.parts) {
    const wb = { buffer: part.buffer, size: align4(part.rows * K * BYTES[w.dtype]) };
    const args = {
      uniforms: { M, N: part.rows, K, ldy: N, colOffset: part.rowStart },
      workgroups: [Math.ceil(part.rows / MATMUL_TILE), Math.ceil(M / MATMUL_TILE)] as const,
    };
    // x [M, K] act, part [rows, K] f32 | f16-as-u32, y [M, N] act, bias [N] f32 | f16-as-u32
    if (bb) {
      dispatch(gpu, ctx.pass, matmulBiasKernel, knobs, { ...args, buffers: [xb, wb, yb, bb] });
    } else {
      dispatch(gpu, ctx.pass, matmulKernel, knobs, { ...args, buffers: [xb, wb, yb] });
    }
  }
}
