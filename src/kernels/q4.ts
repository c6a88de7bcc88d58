/**
 * 4-bit (q4g32, `src/quant/q4.ts`) linear layers on the GPU: the weight as row parts
 * (`Q4Weight`, each part small enough to bind), its upload, the decode matrix-vector product
 * (`q4MatVec`, batch 1, bandwidth bound) and the prefill matrix-matrix product (`q4MatMul`,
 * tiled). Both dispatch once per row part and write their rows at an output offset.
 * Decode fusions of the same matvec shader (one dispatch instead of several, for weights held in
 * one part each): `q4MatVecGateUp` (silu(gate x) * up x, the gated MLP's first half) and
 * `q4MatVecMulti` (up to three weights with the same K, e.g. q, k, v, into one output buffer);
 * each of these and `q4MatVec` can fold the RMSNorm that feeds it (`FoldedNorm`), and `q4MatVec`
 * can add into the residual stream as its epilogue. On GPUs the rows per workgroup follow the
 * row count (`q4MatVecConfigFor`).
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, writeBuffer, type Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import { checkNormInput, normKnob, type FoldedNorm, type NormWeightKnob } from './folded-norm.js';
import { Q4_GROUP, q4Supported, type Q4Matrix } from '../quant/q4.js';
import q4MatvecSource from '../../shaders/q4_matvec.wgsl?raw';
import matvecCommonSource from '../../shaders/matvec_common.wgsl?raw';
import matmulSource from '../../shaders/q4_matmul.wgsl?raw';
import subgroupMatrixSource from '../../shaders/subgroup_matrix_matmul.wgsl?raw';
import { subgroupMatrixIsDefault, subgroupMatrixSpec, subgroupMatrixTile, subgroupMatrixToRun, withFragments, type SubgroupMatrixShape } from './subgroup-matrix.js';

const matvecSource = `${q4MatvecSource}\n${matvecCommonSource}`;

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
  if (gpu.isSoftware) return { wg: 64, tpr: 1, subgroups: false, pairs: false, intcvt: true };
  // Best on an H100 (bench section q4tune): 32 threads per block, 4 blocks per workgroup.
  const tpr = 32;
  return { wg: 128, tpr, subgroups: canUseSubgroups(gpu, tpr), pairs: true, intcvt: false };
}

/**
 * Workgroups a matvec should launch on a GPU to fill it: 4 per SM of a big one (an H100 has 132
 * SMs). Residency is whole workgroups, so with ~2.4 per SM (o/down-proj at 16 rows per workgroup:
 * 320) a third of the SMs carry 3 and the rest 2, and the dispatch runs at ~0.8 of its balanced
 * speed; at >= 4 per SM the imbalance is <= 1/4 and shrinks as the count grows.
 */
export const Q4_MATVEC_TARGET_WORKGROUPS = 4 * 132;

/**
 * The default split for a matvec of `rows` output rows (all weights of a fused dispatch
 * together). On GPUs the threads per row stay at the tuned 32 (the total thread count, 8 per row,
 * is fixed by that) and only the rows per workgroup shrink, 16 -> 8 (wg 128 -> 64, still two
 * subgroups of 32), when 16 would launch fewer than Q4_MATVEC_TARGET_WORKGROUPS: at the Nemo
 * shapes, q/k/v 6144 rows 384 -> 768, o- and down-proj 5120 rows 320 -> 640 workgroups; gate/up
 * (14336 rows of each: 896) and lm_head keep 128. Smaller workgroups are not slower per byte on GPUs
 * (residency is limited per thread, and 64-thread workgroups fit 32 per SM). Splitting K instead
 * would need a second pass or atomics on floats (WGSL has none) for the same effect. Not
 * measured on a GPU yet (none was available): bench section q4tune compares wg 64 and 128.
 * On CPU adapters (`isSoftware`) the workgroup count only needs to cover the few CPU threads, so
 * the rows-per-thread split is kept whatever the shape.
 */
export function q4MatVecConfigFor(gpu: Gpu, rows: number): Q4MatVecConfig {
  const c = defaultQ4MatVecConfig(gpu);
  if (gpu.isSoftware) return c;
  const rowsPerWg = (4 * c.wg) / c.tpr;
  if (Math.ceil(rows / rowsPerWg) >= Q4_MATVEC_TARGET_WORKGROUPS) return c;
  return { ...c, wg: Math.max(c.tpr, c.wg / 2) };
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
  specialize: (k: MatVecKnobs & { residual: boolean }) => {
    const s = matvecSpec(k, 'none');
    return { ...s, defines: { ...s.defines, RESIDUAL: k.residual } };
  },
});

type MatVecKnobs = { dtype: Act; wg: number; tpr: number; subgroups: boolean; pairs: boolean; intcvt: boolean };

/** The dtype of a folded RMSNorm's weight (NORM variants), or none. */
type NormKnob = { normWeight: NormWeightKnob };

/** Defines and overrides of the matvec shader; `fusion` picks the GATE_UP / QKV variant. */
function matvecSpec(k: MatVecKnobs & Partial<NormKnob>, fusion: 'none' | 'gateUp' | 'qkv') {
  const norm = k.normWeight ?? 'none';
  return {
    defines: {
      F16: k.dtype === 'f16', SUBGROUPS: k.subgroups, GATE_UP: fusion === 'gateUp', QKV: fusion === 'qkv',
      NORM: norm !== 'none', NORM_F16: norm === 'f16',
    },
    overrides: { WG: k.wg, TPR: k.tpr, PAIRS: k.pairs ? 1 : 0, INTCVT: k.intcvt ? 1 : 0 },
  };
}

const weightBindings = (m: number) => [
  { name: `qweight${m || ''}`, access: 'read' },
  { name: `scales${m || ''}`, access: 'read' },
] as const;
const ioBindings = [...weightBindings(0), { name: 'x', access: 'read' }, { name: 'y', access: 'write' }] as const;
const gateUpBindings = [...ioBindings, ...weightBindings(1)];
const qkvBindings = [...gateUpBindings, ...weightBindings(2)];
const normBinding = { name: 'normWeight', access: 'read' } as const;
const gateUpUniforms = { K: 'u32', G: 'u32', rows: 'u32', yOffset: 'u32' } as const;
const qkvUniforms = {
  K: 'u32', G: 'u32', rows0: 'u32', rows1: 'u32', rows2: 'u32', wgs0: 'u32', wgs1: 'u32', yOff0: 'u32', yOff1: 'u32', yOff2: 'u32',
} as const;

/** The plain variant with the RMSNorm folded in (NORM): x is the residual stream, binding 4 the norm weight. */
export const q4NormMatVecKernel = defineKernel({
  name: 'q4_matvec_norm',
  source: matvecSource,
  bindings: [...ioBindings, { name: 'normWeight', access: 'read' }],
  uniforms: { K: 'u32', G: 'u32', rows: 'u32', yOffset: 'u32', eps: 'f32' },
  specialize: (k: MatVecKnobs & NormKnob) => matvecSpec(k, 'none'),
});

/** GATE_UP variant: y = silu(W x) * W1 x (bindings 4, 5: the up weight). */
export const q4GateUpKernel = defineKernel({
  name: 'q4_matvec_gate_up',
  source: matvecSource,
  bindings: gateUpBindings,
  uniforms: gateUpUniforms,
  specialize: (k: MatVecKnobs) => matvecSpec(k, 'gateUp'),
});

/** GATE_UP with the RMSNorm folded in (NORM): x is the residual stream, binding 6 the norm weight. */
export const q4NormGateUpKernel = defineKernel({
  name: 'q4_matvec_norm_gate_up',
  source: matvecSource,
  bindings: [...gateUpBindings, normBinding],
  uniforms: { ...gateUpUniforms, eps: 'f32' },
  specialize: (k: MatVecKnobs & NormKnob) => matvecSpec(k, 'gateUp'),
});

/** QKV variant: three weights with the same K in one dispatch, each at its own output offset. */
export const q4QkvKernel = defineKernel({
  name: 'q4_matvec_qkv',
  source: matvecSource,
  bindings: qkvBindings,
  uniforms: qkvUniforms,
  specialize: (k: MatVecKnobs) => matvecSpec(k, 'qkv'),
});

/** QKV with the RMSNorm folded in (NORM): x is the residual stream, binding 8 the norm weight. */
export const q4NormQkvKernel = defineKernel({
  name: 'q4_matvec_norm_qkv',
  source: matvecSource,
  bindings: [...qkvBindings, normBinding],
  uniforms: { ...qkvUniforms, eps: 'f32' },
  specialize: (k: MatVecKnobs & NormKnob) => matvecSpec(k, 'qkv'),
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
  specialize: (k: { dtype: Act; variant: 'tile64' | 'tile128' }) => ({
    defines: { F16: k.dtype === 'f16', WIDE: k.variant === 'tile128' },
  }),
});

/** The same product on the adapter's matrix units (f16 operands whatever the activations): fragment side and subgroup size as knobs. */
export const q4MatMulSubgroupMatrixKernel = defineKernel({
  name: 'q4_matmul_subgroup_matrix',
  source: withFragments(subgroupMatrixSource),
  bindings: q4MatMulKernel.bindings,
  uniforms: q4MatMulKernel.uniforms,
  specialize: (k: { dtype: Act } & SubgroupMatrixShape) => subgroupMatrixSpec(k, {}),
});

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
 * y [yOffset + n] = sum_k W [n, k] x [k] for n < W.rows (decode, batch 1); with `residual`,
 * y [yOffset + n] += that (the residual add as the epilogue, bit-identical to a matvec into
 * scratch followed by `addInPlace`); with `norm`, x is read as rmsnorm(x) * norm.weight (the
 * final norm before lm_head folded in, bit-identical to running rmsnorm first). x: [>= K] f32 or f16; y: the same dtype, [>= yOffset + N].
 */
export function q4MatVec(
  ctx: Ctx,
  w: Q4Weight,
  x: Tensor,
  y: Tensor,
  opts: { yOffset?: number; config?: Q4MatVecConfig; residual?: boolean; norm?: FoldedNorm } = {},
): void {
  const dtype = checkAct('q4_matvec', x, y);
  if (opts.residual && (x.buffer === y.buffer)) throw new KernelError('q4_matvec', 'residual: x and y must be different buffers');
  if (opts.residual && opts.norm) throw new KernelError('q4_matvec', 'a folded norm and the residual epilogue do not combine');
  const normWeight = normKnob('q4_matvec', opts.norm, w.cols);
  if (opts.norm) checkNormInput('q4_matvec', x, y);
  const yOffset = opts.yOffset ?? 0;
  if (x.numel < w.cols) throw new KernelError('q4_matvec', `x [${x.shape}] shorter than K=${w.cols} of ${w.label}`);
  if (y.numel < yOffset + w.rows) {
    throw new KernelError('q4_matvec', `y [${y.shape}] shorter than ${yOffset} + N=${w.rows} of ${w.label}`);
  }
  const config = opts.config ?? q4MatVecConfigFor(ctx.gpu, w.rows);
  checkConfig(config);
  if (config.subgroups && !canUseSubgroups(ctx.gpu, config.tpr)) {
    throw new KernelError('q4_matvec', `subgroup reduction needs the feature and subgroups of at most tpr=${config.tpr} lanes`);
  }
  const rowsPerWg = (4 * config.wg) / config.tpr;
  for (const part of w.parts) {
    const buffers = [part.qweight, part.scales, x.buffer, y.buffer];
    const uniforms = { K: w.cols, G: w.cols / Q4_GROUP, rows: part.rows, yOffset: yOffset + part.rowStart };
    const workgroups = grid(Math.ceil(part.rows / rowsPerWg), ctx.gpu.limits.maxComputeWorkgroupsPerDimension);
    if (opts.norm && normWeight !== 'none') {
      dispatch(ctx.gpu, ctx.pass, q4NormMatVecKernel, { dtype, ...config, normWeight }, {
        buffers: [...buffers, opts.norm.weight.buffer], uniforms: { ...uniforms, eps: opts.norm.eps }, workgroups,
      });
    } else {
      dispatch(ctx.gpu, ctx.pass, q4MatVecKernel, { dtype, ...config, residual: !!opts.residual }, { buffers, uniforms, workgroups });
    }
  }
}

/** The checked matvec config (default per adapter and row count) for a fused dispatch. */
function fusedConfig(ctx: Ctx, name: string, config: Q4MatVecConfig | undefined, rows: number): Q4MatVecConfig {
  const c = config ?? q4MatVecConfigFor(ctx.gpu, rows);
  checkConfig(c);
  if (c.subgroups && !canUseSubgroups(ctx.gpu, c.tpr)) {
    throw new KernelError(name, `subgroup reduction needs the feature and subgroups of at most tpr=${c.tpr} lanes`);
  }
  return c;
}

/** The single part of a weight a fused kernel binds (the fusions take unsplit weights only). */
function onlyPart(name: string, w: Q4Weight): Q4Part {
  if (w.parts.length !== 1) throw new KernelError(name, `${w.label} is held in ${w.parts.length} row parts; fused kernels need one`);
  return w.parts[0]!;
}

/**
 * y [yOffset + n] = silu((Wg x)[n]) * (Wu x)[n] for n < N (decode, batch 1): the gate and up
 * projections of a gated MLP and their SiLU product in one dispatch, silu(g) = g / (1 + e^-g).
 * gate, up: [N, K], one row part each; x: [>= K] f32 or f16; y: the same dtype, [>= yOffset + N].
 * In f32 the result is bit-identical to q4MatVec, q4MatVec, siluMul (same sums, same formula).
 */
export function q4MatVecGateUp(
  ctx: Ctx,
  gate: Q4Weight,
  up: Q4Weight,
  x: Tensor,
  y: Tensor,
  opts: { yOffset?: number; config?: Q4MatVecConfig; norm?: FoldedNorm } = {},
): void {
  const name = 'q4_matvec_gate_up';
  const dtype = checkAct(name, x, y);
  if (gate.rows !== up.rows || gate.cols !== up.cols) {
    throw new KernelError(name, `${gate.label} [${gate.rows}, ${gate.cols}] and ${up.label} [${up.rows}, ${up.cols}] differ`);
  }
  const yOffset = opts.yOffset ?? 0;
  if (x.numel < gate.cols) throw new KernelError(name, `x [${x.shape}] shorter than K=${gate.cols} of ${gate.label}`);
  if (y.numel < yOffset + gate.rows) throw new KernelError(name, `y [${y.shape}] shorter than ${yOffset} + N=${gate.rows}`);
  const g = onlyPart(name, gate);
  const u = onlyPart(name, up);
  const config = fusedConfig(ctx, name, opts.config, gate.rows);
  const rowsPerWg = (4 * config.wg) / config.tpr;
  const buffers = [g.qweight, g.scales, x.buffer, y.buffer, u.qweight, u.scales];
  const uniforms = { K: gate.cols, G: gate.cols / Q4_GROUP, rows: gate.rows, yOffset };
  const workgroups = grid(Math.ceil(gate.rows / rowsPerWg), ctx.gpu.limits.maxComputeWorkgroupsPerDimension);
  const normWeight = normKnob(name, opts.norm, gate.cols);
  if (opts.norm && normWeight !== 'none') {
    checkNormInput(name, x, y);
    dispatch(ctx.gpu, ctx.pass, q4NormGateUpKernel, { dtype, ...config, normWeight }, {
      buffers: [...buffers, opts.norm.weight.buffer], uniforms: { ...uniforms, eps: opts.norm.eps }, workgroups,
    });
  } else {
    dispatch(ctx.gpu, ctx.pass, q4GateUpKernel, { dtype, ...config }, { buffers, uniforms, workgroups });
  }
}

/**
 * y [yOffsets[i] + n] = (W_i x)[n] for n < W_i.rows, i < ws.length (1..3 weights with the same
 * K, one row part each) in one dispatch (decode, batch 1): e.g. the q, k, v projections into one
 * [q | k | v] buffer. x: [>= K] f32 or f16; y: the same dtype, [>= yOffsets[i] + W_i.rows].
 * Each output equals q4MatVec's exactly. Fewer than 3 weights: the missing ones are empty.
 * The kernel binds 8 storage buffers (9 with a norm); an adapter that allows fewer per shader
 * stage (WebGPU's default is 8) gets one q4MatVec dispatch per weight with the same split
 * instead: the same outputs, bit for bit.
 */
export function q4MatVecMulti(
  ctx: Ctx,
  ws: readonly Q4Weight[],
  x: Tensor,
  y: Tensor,
  yOffsets: readonly number[],
  opts: { config?: Q4MatVecConfig; norm?: FoldedNorm } = {},
): void {
  const name = 'q4_matvec_qkv';
  const dtype = checkAct(name, x, y);
  if (ws.length < 1 || ws.length > 3 || yOffsets.length !== ws.length) {
    throw new KernelError(name, `${ws.length} weights with ${yOffsets.length} offsets: need 1..3 of each, as many`);
  }
  const K = ws[0]!.cols;
  ws.forEach((w, i) => {
    if (w.cols !== K) throw new KernelError(name, `${w.label} has K=${w.cols}, ${ws[0]!.label} K=${K}`);
    if (y.numel < yOffsets[i]! + w.rows) throw new KernelError(name, `y [${y.shape}] shorter than ${yOffsets[i]} + N=${w.rows} of ${w.label}`);
  });
  if (x.numel < K) throw new KernelError(name, `x [${x.shape}] shorter than K=${K}`);
  const parts = ws.map((w) => onlyPart(name, w));
  const config = fusedConfig(ctx, name, opts.config, ws.reduce((a, w) => a + w.rows, 0));
  if ((opts.norm ? q4NormQkvKernel : q4QkvKernel).bindings.length > ctx.gpu.limits.maxStorageBuffersPerShaderStage) {
    ws.forEach((w, i) => q4MatVec(ctx, w, x, y, { yOffset: yOffsets[i], config, norm: opts.norm }));
    return;
  }
  const rowsPerWg = (4 * config.wg) / config.tpr;
  // Absent weights: 0 rows and 0 workgroups; their bindings repeat weight 0 (never read).
  const rows = [0, 1, 2].map((i) => ws[i]?.rows ?? 0);
  const wgs = rows.map((r) => Math.ceil(r / rowsPerWg));
  const part = (i: number) => parts[i] ?? parts[0]!;
  const buffers = [part(0).qweight, part(0).scales, x.buffer, y.buffer, part(1).qweight, part(1).scales, part(2).qweight, part(2).scales];
  const uniforms = {
    K, G: K / Q4_GROUP, rows0: rows[0]!, rows1: rows[1]!, rows2: rows[2]!, wgs0: wgs[0]!, wgs1: wgs[1]!,
    yOff0: yOffsets[0]!, yOff1: yOffsets[1] ?? 0, yOff2: yOffsets[2] ?? 0,
  };
  const workgroups = grid(wgs[0]! + wgs[1]! + wgs[2]!, ctx.gpu.limits.maxComputeWorkgroupsPerDimension);
  const normWeight = normKnob(name, opts.norm, K);
  if (opts.norm && normWeight !== 'none') {
    checkNormInput(name, x, y);
    dispatch(ctx.gpu, ctx.pass, q4NormQkvKernel, { dtype, ...config, normWeight }, {
      buffers: [...buffers, opts.norm.weight.buffer], uniforms: { ...uniforms, eps: opts.norm.eps }, workgroups,
    });
  } else {
    dispatch(ctx.gpu, ctx.pass, q4QkvKernel, { dtype, ...config }, { buffers, uniforms, workgroups });
  }
}

/**
 * Kernel of the prefill product: `tile64` (shaders/q4_matmul.wgsl, 64 x 64 through workgroup
 * memory, 4 x 4 outputs per thread) or `tile128` (128 x 128, 8 x 8 per thread, K in half-group
 * steps: twice the multiply-adds per workgroup-memory read): both give the same bits.
 * `subgroupMatrix` (shaders/subgroup_matrix_matmul.wgsl): one subgroup per 4 x 4 fragments
 * (64 x 64 with 16 x 16 fragments, 32 x 32 with 8 x 8) on the adapter's matrix units, operands
 * (activations and dequantised weights) rounded to f16 once, sums in f32: the same values within
 * f16 rounding, not the same bits; usable once `checkSubgroupMatrix` passed on the device.
 */
export type Q4MatMulVariant = 'tile64' | 'tile128' | 'subgroupMatrix';

const VARIANT_TILE: Record<'tile64' | 'tile128', number> = { tile64: 64, tile128: 128 };

/**
 * The variant `q4MatMul` uses by default: `subgroupMatrix` where its check made it the default (a
 * GPU that passed it: `checkSubgroupMatrix`; f16 operands on the matrix units: WebLLM
 * computes in f16 throughout, llama.cpp's GPU matmuls round or quantise the activations too;
 * `GpuOptions.disableSubgroupMatrix` keeps f32 operands), else `tile64` (on SwiftShader `tile128`
 * measured 3x slower, 128 x 5120 -> 4096, bench section q4matmul; on GPUs `tile64` is the split
 * measured on an H100 before, and `tile128` waits for a GPU run of the q4matmul section, which
 * reports every variant, to be picked by M there).
 */
export function defaultQ4MatMulVariant(gpu: Gpu): Q4MatMulVariant {
  return subgroupMatrixIsDefault(gpu) ? 'subgroupMatrix' : 'tile64';
}

/**
 * Y [m, n] = sum_k X [m, k] W [n, k] for m < M, n < W.rows (prefill), once per row part.
 * X: [M, K] row-major, f32 or f16; Y: the same dtype, [M, N] row-major.
 * `variant`: see `defaultQ4MatMulVariant`; `subgroupMatrix` takes the fragment shape checked on
 * the device unless `shape` names one (the device's check itself passes it).
 */
export function q4MatMul(
  ctx: Ctx,
  w: Q4Weight,
  x: Tensor,
  y: Tensor,
  M: number,
  opts: { variant?: Q4MatMulVariant; shape?: SubgroupMatrixShape } = {},
): void {
  const dtype = checkAct('q4_matmul', x, y);
  if (!(M > 0) || !Number.isInteger(M)) throw new KernelError('q4_matmul', `M=${M}`);
  if (x.numel < M * w.cols) throw new KernelError('q4_matmul', `X [${x.shape}] smaller than [${M}, ${w.cols}]`);
  if (y.numel < M * w.rows) throw new KernelError('q4_matmul', `Y [${y.shape}] smaller than [${M}, ${w.rows}]`);
  const shape = subgroupMatrixToRun(ctx.gpu, 'q4_matmul', opts);
  const tiled = opts.variant === 'tile128' ? 'tile128' : 'tile64';
  const tile = shape ? subgroupMatrixTile(shape) : VARIANT_TILE[tiled];
  const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
  const tilesM = Math.ceil(M / tile);
  if (tilesM > max) throw new KernelError('q4_matmul', `M=${M} needs ${tilesM} > ${max} workgroup rows`);
  for (const part of w.parts) {
    const args = {
      buffers: [part.qweight, part.scales, x.buffer, y.buffer],
      uniforms: { M, K: w.cols, G: w.cols / Q4_GROUP, rows: part.rows, ldy: w.rows, yCol: part.rowStart },
      workgroups: [Math.ceil(part.rows / tile), tilesM] as const,
    };
    if (shape) {
      dispatch(ctx.gpu, ctx.pass, q4MatMulSubgroupMatrixKernel, { dtype, ...shape }, args);
    } else {
      dispatch(ctx.gpu, ctx.pass, q4MatMulKernel, { dtype, variant: tiled }, args);
    }
  }
}
