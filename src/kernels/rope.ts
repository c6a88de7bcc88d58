/**
 * Rotary position embeddings, applied in place, Hugging Face rotate-half layout (pairs
 * (i, i + d/2)). Two variants of `shaders/rope.wgsl`:
 *
 * - 1D decoder RoPE (`ropeInPlace` with a table from `buildRopeTable`): any inverse-frequency
 *   vector (plain, YaRN: see `rope-freqs.ts`), an attention factor multiplying cos and sin, and
 *   the Llama-4 query scale `1 + beta ln(1 + floor(pos / orig))` (pass beta only for q).
 * - Pixtral-ViT 2D RoPE (`visionRopeInPlace` with a table from `buildVisionRopeTable`): per patch
 *   (row, col), angles concat(row * freqs[0::2], col * freqs[1::2]) for both halves.
 *
 * Precision: the kernel evaluates no sin/cos. The CPU builds (cos, sin) tables in float64 and
 * rounds only the results to f32. For 1D, pos = hi * LO + lo and the shader combines
 * table[lo] and table[LO + hi] by angle addition (error a few f32 ulps, ~3e-7), so pos 131071
 * with theta 1e9 is as exact as pos 1. The naive f32 way, cos(f32(pos * inv_freq)), has angle
 * errors up to half an ulp of 1.3e5 rad = 0.004 rad (see test/kernels/rope.test.ts).
 * Table size is (LO + maxPos / LO) * d/2 * 8 bytes: 146 KB for d=128, maxPos=131072.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import { Tensor } from '../gpu/tensor.js';
import type { Gpu } from '../gpu/device.js';
import { KernelError } from '../errors.js';
import { visionRopeFreqs } from './rope-freqs.js';
import source from '../../shaders/rope.wgsl?raw';

const WG = 256;

export const ropeKernel = defineKernel({
  name: 'rope',
  source,
  bindings: [
    { name: 'x', access: 'write' },
    { name: 'tab', access: 'read' },
    { name: 'pos', access: 'read' },
  ],
  uniforms: {
    n_tok: 'u32',
    n_heads: 'u32',
    half: 'u32',
    row_stride: 'u32',
    offset: 'u32',
    pos0: 'u32',
    use_pos: 'u32',
    lo_size: 'u32',
    attn_factor: 'f32',
    beta: 'f32',
    orig: 'u32',
  },
  specialize: (k: { dtype: 'f32' | 'f16'; vision: boolean }) => ({
    defines: { F16: k.dtype === 'f16', VISION: k.vision },
    overrides: { WG },
  }),
});

/** A (cos, sin) table on the GPU for the 1D or the 2D variant. */
export interface RopeTable {
  kind: '1d' | '2d';
  /** [rows, headDim / 2] vec2<f32> (cos, sin). */
  tensor: Tensor;
  headDim: number;
  /** 1D: positions 0..maxPos-1 are covered; 2D: patches per side of the grid. */
  maxPos: number;
  /** 1D: the low-part table length LO (pos = hi * LO + lo); 2D: 0. */
  loSize: number;
}

/** (cos, sin) rows in float64, rounded once to f32: row r, entry i -> angle = r * step * f[i]. */
function fillRows(out: Float32Array, rowStart: number, rows: number, step: number, freqs: ArrayLike<number>): void {
  const half = freqs.length;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < half; i++) {
      // r * step < 2^53 and f64 products are exact to 1 ulp of the angle (1.5e-11 rad at 1.3e5).
      const a = r * step * freqs[i]!;
      const o = 2 * ((rowStart + r) * half + i);
      out[o] = Math.cos(a);
      out[o + 1] = Math.sin(a);
    }
  }
}

/** CPU data of a 1D table: LO rows of angle(lo) then ceil(maxPos / LO) rows of angle(hi * LO). */
export function ropeTableData(invFreq: ArrayLike<number>, maxPos: number, loSize = 256): Float32Array {
  const half = invFreq.length;
  const hiRows = Math.ceil(maxPos / loSize);
  const out = new Float32Array((loSize + hiRows) * half * 2);
  fillRows(out, 0, loSize, 1, invFreq);
  fillRows(out, loSize, hiRows, loSize, invFreq);
  return out;
}

/**
 * 1D table for positions [0, maxPos) from `invFreq` (d/2 float64 values, e.g. `ropeInvFreq` or
 * `yarnInvFreq`). Build once per model; it does not depend on the prompt.
 */
export function buildRopeTable(gpu: Gpu, invFreq: ArrayLike<number>, maxPos: number, loSize = 256): RopeTable {
  const data = ropeTableData(invFreq, maxPos, loSize);
  const rows = data.length / (2 * invFreq.length);
  return {
    kind: '1d',
    tensor: Tensor.from(gpu, data, [rows, invFreq.length, 2], 'f32', 'rope-table'),
    headDim: 2 * invFreq.length,
    maxPos,
    loSize,
  };
}

/** CPU data of a 2D table [grid, d/2]: entries i < d/4 use row freqs, the rest column freqs. */
export function visionRopeTableData(headDim: number, theta: number, gridSide: number): Float32Array {
  const { fh, fw } = visionRopeFreqs(headDim, theta);
  const sel = Float64Array.from([...fh, ...fw]);
  const out = new Float32Array(gridSide * sel.length * 2);
  fillRows(out, 0, gridSide, 1, sel);
  return out;
}

/** 2D table for a grid of `gridSide` patches per side (Pixtral: image_size / patch_size). */
export function buildVisionRopeTable(gpu: Gpu, headDim: number, theta: number, gridSide: number): RopeTable {
  const data = visionRopeTableData(headDim, theta, gridSide);
  return {
    kind: '2d',
    tensor: Tensor.from(gpu, data, [gridSide, headDim / 2, 2], 'f32', 'vision-rope-table'),
    headDim,
    maxPos: gridSide,
    loSize: 0,
  };
}

/** Packs patch coordinates for `visionRopeInPlace`: (row << 16) | col, images concatenated. */
export function packPatchCoords(grids: readonly { rows: number; cols: number }[]): Uint32Array {
  const n = grids.reduce((a, g) => a + g.rows * g.cols, 0);
  const out = new Uint32Array(n);
  let k = 0;
  for (const g of grids) for (let r = 0; r < g.rows; r++) for (let c = 0; c < g.cols; c++) out[k++] = ((r << 16) | c) >>> 0;
  return out;
}

/** Where the heads of a [T, ...] activation live: defaults to a contiguous [T, heads, head_dim]. */
export interface HeadsView {
  /** Elements from one token's row to the next; default heads * headDim. */
  rowStride?: number;
  /** Element offset of head 0 of token 0 (e.g. numHeads * headDim for k in a fused qkv). */
  offset?: number;
}

export interface RopeArgs extends HeadsView {
  /** Tokens in x. */
  tokens: number;
  heads: number;
  /** Absolute position of token 0; ignored when `positions` is given. */
  pos0?: number;
  /** [tokens] u32 absolute positions (optional). */
  positions?: Tensor;
  /** Multiplies cos and sin (YaRN attention factor); default 1. */
  attnFactor?: number;
  /** Llama-4 query scale: q *= 1 + beta ln(1 + floor(pos / orig)). Use for q only; 0 = off. */
  llama4Beta?: number;
  llama4Orig?: number;
}

function checkX(name: string, x: Tensor, tokens: number, heads: number, headDim: number, v: HeadsView): { stride: number; offset: number; dtype: 'f32' | 'f16' } {
  const dtype = x.dtype;
  if (dtype !== 'f32' && dtype !== 'f16') throw new KernelError(name, `x dtype ${dtype} unsupported`);
  const stride = v.rowStride ?? heads * headDim;
  const offset = v.offset ?? 0;
  if (stride < heads * headDim) throw new KernelError(name, `row stride ${stride} < heads*head_dim ${heads * headDim}`);
  const need = tokens === 0 ? 0 : offset + (tokens - 1) * stride + heads * headDim;
  if (need > x.numel) throw new KernelError(name, `x [${x.shape}] too small for ${tokens} tokens x ${heads} heads x ${headDim} (needs ${need})`);
  return { stride, offset, dtype };
}

/** 1D RoPE in place on x: tokens x heads x head_dim (f32 or f16 activations). */
export function ropeInPlace(ctx: Ctx, x: Tensor, table: RopeTable, a: RopeArgs): void {
  if (table.kind !== '1d') throw new KernelError('rope', 'ropeInPlace needs a 1D table (buildRopeTable)');
  const d = table.headDim;
  const { stride, offset, dtype } = checkX('rope', x, a.tokens, a.heads, d, a);
  const pos0 = a.pos0 ?? 0;
  if (a.positions) {
    if (a.positions.dtype !== 'u32' || a.positions.numel < a.tokens) {
      throw new KernelError('rope', `positions must be u32 [>=${a.tokens}], got ${a.positions.dtype} [${a.positions.shape}]`);
    }
  } else if (pos0 + a.tokens > table.maxPos) {
    throw new KernelError('rope', `positions up to ${pos0 + a.tokens - 1} exceed the table (${table.maxPos})`);
  }
  const beta = a.llama4Beta ?? 0;
  const orig = a.llama4Orig ?? 1;
  if (beta !== 0 && !(orig >= 1)) throw new KernelError('rope', `llama4Orig ${orig} must be >= 1`);
  const n = a.tokens * a.heads * (d / 2);
  dispatch(ctx.gpu, ctx.pass, ropeKernel, { dtype, vision: false }, {
    buffers: [x.buffer, table.tensor.buffer, (a.positions ?? table.tensor).buffer],
    uniforms: {
      n_tok: a.tokens, n_heads: a.heads, half: d / 2, row_stride: stride, offset, pos0,
      use_pos: a.positions ? 1 : 0, lo_size: table.loSize, attn_factor: a.attnFactor ?? 1, beta, orig,
    },
    workgroups: grid(Math.ceil(n / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

/**
 * Pixtral-ViT 2D RoPE in place on x: tokens (patches of several images, concatenated) x heads x
 * head_dim. `coords` is [tokens] u32 from `packPatchCoords`; every row/col must be < grid side.
 */
export function visionRopeInPlace(ctx: Ctx, x: Tensor, table: RopeTable, coords: Tensor, a: { tokens: number; heads: number } & HeadsView): void {
  if (table.kind !== '2d') throw new KernelError('vision-rope', 'visionRopeInPlace needs a 2D table (buildVisionRopeTable)');
  const d = table.headDim;
  const { stride, offset, dtype } = checkX('vision-rope', x, a.tokens, a.heads, d, a);
  if (coords.dtype !== 'u32' || coords.numel < a.tokens) {
    throw new KernelError('vision-rope', `coords must be u32 [>=${a.tokens}], got ${coords.dtype} [${coords.shape}]`);
  }
  const n = a.tokens * a.heads * (d / 2);
  dispatch(ctx.gpu, ctx.pass, ropeKernel, { dtype, vision: true }, {
    buffers: [x.buffer, table.tensor.buffer, coords.buffer],
    uniforms: {
      n_tok: a.tokens, n_heads: a.heads, half: d / 2, row_stride: stride, offset, pos0: 0,
      use_pos: 1, lo_size: 0, attn_factor: 1, beta: 0, orig: 1,
    },
    workgroups: grid(Math.ceil(n / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

/**
 * 1D RoPE on q and k of one layer (two dispatches): the Llama-4 query scale applies to q only.
 * q [tokens, heads, d] and k [tokens, kvHeads, d], or views of one fused qkv activation.
 */
export function ropeQK(
  ctx: Ctx,
  q: Tensor,
  k: Tensor,
  table: RopeTable,
  a: Omit<RopeArgs, 'heads' | 'rowStride' | 'offset'> & { heads: number; kvHeads: number; qView?: HeadsView; kView?: HeadsView },
): void {
  const common = { tokens: a.tokens, pos0: a.pos0, positions: a.positions, attnFactor: a.attnFactor };
  ropeInPlace(ctx, q, table, { ...common, ...a.qView, heads: a.heads, llama4Beta: a.llama4Beta, llama4Orig: a.llama4Orig });
  ropeInPlace(ctx, k, table, { ...common, ...a.kView, heads: a.kvHeads });
}
