/**
 * Linear layers and embedding gathers whose weights stay in ggml's block formats exactly as the
 * GGUF stores them (never re-quantised): the weight as row parts (`GgufWeight`, each part's bytes
 * in one buffer, small enough to bind), the decode matrix-vector product (`ggufMatVec`), the
 * prefill matrix product (`ggufMatMul`: tiled, or on subgroup matrices) and the token embedding gather (`ggufEmbed`). The block
 * format is one knob (`type`) that becomes one define; the block decoding lives once, in
 * `shaders/gguf_blocks.wgsl`, appended to each op's shader. Decode fusions, as q4's: the residual
 * add as the epilogue, the RMSNorm folded in (`FoldedNorm`), gate/up + SiLU in one dispatch
 * (`ggufMatVecGateUp`) and q/k/v in one dispatch per run of weights stored back to back in one
 * buffer (`ggufMatVecMulti`; the loader packs q|k|v and gate|up of one block type so).
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, writeBuffer, type Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import { canUseSubgroups } from './q4.js';
import { checkNormInput, normKnob, type FoldedNorm, type NormWeightKnob } from './folded-norm.js';
import { subgroupMatrixSpec, subgroupMatrixTile, subgroupMatrixToRun, withFragments, type SubgroupMatrixShape } from './subgroup-matrix.js';
import { blockShape, GGML_TYPE, type SupportedType } from '../gguf/types.js';
import blocksSource from '../../shaders/gguf_blocks.wgsl?raw';
import ggufMatvecSource from '../../shaders/gguf_matvec.wgsl?raw';
import matvecCommonSource from '../../shaders/matvec_common.wgsl?raw';
import matmulSource from '../../shaders/gguf_matmul.wgsl?raw';
import subgroupMatrixSource from '../../shaders/subgroup_matrix_matmul.wgsl?raw';
import embeddingSource from '../../shaders/embedding.wgsl?raw';

/** One row range of a GGUF weight: its rows' bytes as stored, in one buffer (padded to 4). */
export interface GgufPart {
  rowStart: number;
  rows: number;
  data: GPUBuffer;
  /**
   * The row of `data` holding the part's first row: 0, unless the buffer holds adjacent weights
   * back to back (q | k | v, gate | up: `packGgufWeights`), which one dispatch then reads as one.
   */
  dataRow: number;
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

/** Whether rows of `cols` elements are whole blocks of `type` (and whole 32-element groups). */
function wholeBlocks(type: SupportedType, cols: number): boolean {
  return cols > 0 && cols % 32 === 0 && cols % blockShape(GGML_TYPE[type])!.elems === 0;
}

function checkCols(name: string, type: SupportedType, cols: number, label: string): void {
  if (!wholeBlocks(type, cols)) {
    throw new KernelError(name, `${label}: K=${cols} must be a multiple of 32 and of the ${type} block (${blockShape(GGML_TYPE[type])!.elems})`);
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
    return { ...p, data, dataRow: 0 };
  });
  return { type, rows, cols, parts, label };
}

/** One weight of a `packGgufWeights` buffer. */
export interface PackedMember {
  rows: number;
  label: string;
}

/**
 * Weights of one block type and width stored back to back, rows of member i after those of
 * member i - 1, in one buffer (one part each), so that a decode dispatch reads adjacent members
 * as one weight. Null when they cannot share one: rows that are not whole blocks (left for
 * `uploadGgufWeight` to refuse), a buffer over one binding, or a member's bytes not whole 4-byte
 * words (writeBuffer's unit). `write(i, bytes)` uploads member i's rows as stored.
 */
export function packGgufWeights(
  gpu: Gpu,
  type: SupportedType,
  cols: number,
  members: readonly PackedMember[],
  label: string,
  maxBindingBytes?: number,
): { weights: GgufWeight[]; write(i: number, bytes: Uint8Array): void } | null {
  if (!wholeBlocks(type, cols)) return null;
  const rb = ggufRowBytes(type, cols);
  const total = members.reduce((a, m) => a + m.rows, 0) * rb;
  const limit = Math.min(maxBindingBytes ?? Infinity, gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) - 8;
  if (total > limit || members.some((m) => (m.rows * rb) % 4 !== 0)) return null;
  const data = createBuffer(gpu, total + 4, label);
  let dataRow = 0;
  const weights = members.map((m) => {
    const w: GgufWeight = { type, rows: m.rows, cols, parts: [{ rowStart: 0, rows: m.rows, data, dataRow }], label: m.label };
    dataRow += m.rows;
    return w;
  });
  return {
    weights,
    write(i, bytes) {
      const w = weights[i]!;
      if (bytes.byteLength !== w.rows * rb) throw new KernelError('gguf', `${w.label}: ${bytes.byteLength} bytes, [${w.rows}, ${cols}] ${type} needs ${w.rows * rb}`);
      writeBuffer(gpu, data, w.parts[0]!.dataRow * rb, bytes);
    },
  };
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

/** `wordRows`: Q6_K, Q8_0 or Q4_0 rows of whole 4-byte words, which their own paths need (else the group path). */
type MatVecKnobs = { type: SupportedType; dtype: Act; wg: number; tpr: number; subgroups: boolean; intcvt: boolean; wordRows: boolean };

function matvecKnobs(w: GgufWeight, dtype: Act, c: ReturnType<typeof matvecConfig>): MatVecKnobs {
  const wordRows = (w.type === 'Q6_K' || w.type === 'Q8_0' || w.type === 'Q4_0') && ggufRowBytes(w.type, w.cols) % 4 === 0;
  return { type: w.type, dtype, wg: c.wg, tpr: c.tpr, subgroups: c.subgroups, intcvt: c.intcvt, wordRows };
}

const matvecSource = `${ggufMatvecSource}\n${matvecCommonSource}\n${blocksSource}`;

/** Defines and overrides of the matvec shader for a variant (see shaders/gguf_matvec.wgsl). */
function matvecSpec(k: MatVecKnobs, v: { residual?: boolean; gateUp?: boolean; normWeight?: NormWeightKnob }) {
  const norm = v.normWeight ?? 'none';
  return {
    // Q4_K rows are whole 16-byte units (144-byte blocks): the weight is read as vec4<u32>.
    defines: {
      F16: k.dtype === 'f16', SUBGROUPS: k.subgroups, WQ4: k.type === 'Q4_K', WORD_ROWS: k.wordRows, RESIDUAL: !!v.residual, GATE_UP: !!v.gateUp,
      NORM: norm !== 'none', NORM_F16: norm === 'f16', ...formatDefine(k.type),
    },
    overrides: { WG: k.wg, TPR: k.tpr, INTCVT: k.intcvt ? 1 : 0 },
  };
}

const matvecBindings = [
  { name: 'wq', access: 'read' },
  { name: 'x', access: 'read' },
  { name: 'y', access: 'write' },
] as const;
const normBinding = { name: 'normWeight', access: 'read' } as const;
const matvecUniforms = { K: 'u32', rows: 'u32', yOffset: 'u32', rowBase: 'u32' } as const;

export const ggufMatVecKernel = defineKernel({
  name: 'gguf_matvec',
  source: matvecSource,
  bindings: matvecBindings,
  uniforms: matvecUniforms,
  specialize: (k: MatVecKnobs & { residual: boolean }) => matvecSpec(k, { residual: k.residual }),
});

/** NORM: x is the residual stream, binding 3 the norm weight. */
export const ggufNormMatVecKernel = defineKernel({
  name: 'gguf_matvec_norm',
  source: matvecSource,
  bindings: [...matvecBindings, normBinding],
  uniforms: { ...matvecUniforms, eps: 'f32' },
  specialize: (k: MatVecKnobs & { normWeight: NormWeightKnob }) => matvecSpec(k, { normWeight: k.normWeight }),
});

/** GATE_UP with the RMSNorm folded in: the up rows at rowBase + upRow of the gate's buffer. */
export const ggufNormGateUpKernel = defineKernel({
  name: 'gguf_matvec_norm_gate_up',
  source: matvecSource,
  bindings: [...matvecBindings, normBinding],
  uniforms: { ...matvecUniforms, upRow: 'u32', eps: 'f32' },
  specialize: (k: MatVecKnobs & { normWeight: NormWeightKnob }) => matvecSpec(k, { gateUp: true, normWeight: k.normWeight }),
});

export const ggufMatMulKernel = defineKernel({
  name: 'gguf_matmul',
  source: `${matmulSource}\n${blocksSource}`,
  bindings: [
    { name: 'wq', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { M: 'u32', K: 'u32', rows: 'u32', ldy: 'u32', yCol: 'u32', rowBase: 'u32' },
  specialize: (k: { type: SupportedType; dtype: Act; intcvt: boolean }) => ({
    defines: { F16: k.dtype === 'f16', ...formatDefine(k.type) },
    overrides: { INTCVT: k.intcvt ? 1 : 0 },
  }),
});

/** The same product on the adapter's matrix units (shaders/subgroup_matrix_matmul.wgsl with GGUF). */
export const ggufMatMulSubgroupMatrixKernel = defineKernel({
  name: 'gguf_matmul_subgroup_matrix',
  source: withFragments(`${subgroupMatrixSource}\n${blocksSource}`),
  bindings: ggufMatMulKernel.bindings,
  uniforms: ggufMatMulKernel.uniforms,
  specialize: (k: { type: SupportedType; dtype: Act } & SubgroupMatrixShape) =>
    subgroupMatrixSpec(k, { GGUF: true, ...formatDefine(k.type) }),
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
  specialize: (k: { type: SupportedType; act: Act; intcvt: boolean }) => ({
    defines: { F16: k.act === 'f16', GGUF: true, ...formatDefine(k.type) },
    overrides: { WG: EMBED_WG, INTCVT: k.intcvt ? 1 : 0 },
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

/** The checked work split (the adapter's default unless given). */
function matvecConfig(ctx: Ctx, name: string, config: GgufMatVecConfig | undefined): GgufMatVecConfig & { subgroups: boolean; intcvt: boolean } {
  const c = config ?? defaultGgufMatVecConfig(ctx.gpu);
  const pow2 = (v: number) => v > 0 && (v & (v - 1)) === 0;
  if (!pow2(c.wg) || !pow2(c.tpr) || c.wg % c.tpr !== 0) throw new KernelError(name, `bad config wg=${c.wg} tpr=${c.tpr}`);
  const subgroups = !!c.subgroups;
  if (subgroups && !canUseSubgroups(ctx.gpu, c.tpr)) {
    throw new KernelError(name, `subgroup reduction needs the feature and subgroups of at most tpr=${c.tpr} lanes`);
  }
  return { ...c, subgroups, intcvt: !!c.intcvt };
}

/**
 * y [yOffset + n] = sum_k W [n, k] x [k] for n < W.rows (decode, batch 1); with `residual`,
 * y [yOffset + n] += that sum (rounded to y's dtype first: bit-identical to a matvec into scratch
 * and `addInPlace`); with `norm`, x is the residual stream read as rmsnorm(x) * norm.weight
 * (bit-identical to running rmsnorm first). x: [>= K] f32 or f16; y: the same dtype,
 * [>= yOffset + N]. One dispatch per row part.
 */
export function ggufMatVec(
  ctx: Ctx,
  w: GgufWeight,
  x: Tensor,
  y: Tensor,
  opts: { yOffset?: number; config?: GgufMatVecConfig; residual?: boolean; norm?: FoldedNorm } = {},
): void {
  const name = 'gguf_matvec';
  const dtype = checkAct(name, x, y);
  const yOffset = opts.yOffset ?? 0;
  if (x.numel < w.cols) throw new KernelError(name, `x [${x.shape}] shorter than K=${w.cols} of ${w.label}`);
  if (y.numel < yOffset + w.rows) throw new KernelError(name, `y [${y.shape}] shorter than ${yOffset} + N=${w.rows} of ${w.label}`);
  if (opts.residual && opts.norm) throw new KernelError(name, 'a folded norm and the residual epilogue do not combine');
  if (opts.residual && x.buffer === y.buffer) throw new KernelError(name, 'residual: x and y must be different buffers');
  const normWeight = normKnob(name, opts.norm, w.cols);
  if (opts.norm) checkNormInput(name, x, y);
  const c = matvecConfig(ctx, name, opts.config);
  const rowsPerWg = (4 * c.wg) / c.tpr;
  const knobs = matvecKnobs(w, dtype, c);
  for (const part of w.parts) {
    const uniforms = { K: w.cols, rows: part.rows, yOffset: yOffset + part.rowStart, rowBase: part.dataRow };
    const workgroups = grid(Math.ceil(part.rows / rowsPerWg), ctx.gpu.limits.maxComputeWorkgroupsPerDimension);
    if (opts.norm) {
      dispatch(ctx.gpu, ctx.pass, ggufNormMatVecKernel, { ...knobs, normWeight }, {
        buffers: [part.data, x.buffer, y.buffer, opts.norm.weight.buffer], uniforms: { ...uniforms, eps: opts.norm.eps }, workgroups,
      });
    } else {
      dispatch(ctx.gpu, ctx.pass, ggufMatVecKernel, { ...knobs, residual: !!opts.residual }, { buffers: [part.data, x.buffer, y.buffer], uniforms, workgroups });
    }
  }
}

/** The single part of a weight a fused kernel binds (the fusions take unsplit weights only). */
function onlyPart(name: string, w: GgufWeight): GgufPart {
  if (w.parts.length !== 1) throw new KernelError(name, `${w.label} is held in ${w.parts.length} row parts; fused kernels need one`);
  return w.parts[0]!;
}

/** Whether weight b's rows follow weight a's in a's buffer (one part each, the same type and width). */
export function ggufAdjacent(a: GgufWeight, b: GgufWeight): boolean {
  const pa = a.parts.length === 1 ? a.parts[0]! : null;
  const pb = b.parts.length === 1 ? b.parts[0]! : null;
  return !!pa && !!pb && pa.data === pb.data && pb.dataRow === pa.dataRow + pa.rows && a.type === b.type && a.cols === b.cols;
}

/**
 * y [yOffset + n] = silu((Wg x)[n]) * (Wu x)[n] for n < N with x read as rmsnorm(x) * norm.weight
 * (decode: the MLP's input norm, gate, up and SiLU in one dispatch, bit-identical to rmsnorm,
 * ggufMatVec twice and siluMul in f32). gate and up: the same type and shape, one part each, in
 * one buffer (`packGgufWeights`).
 */
export function ggufMatVecGateUp(
  ctx: Ctx,
  gate: GgufWeight,
  up: GgufWeight,
  x: Tensor,
  y: Tensor,
  opts: { norm: FoldedNorm; yOffset?: number; config?: GgufMatVecConfig },
): void {
  const name = 'gguf_matvec_norm_gate_up';
  const dtype = checkAct(name, x, y);
  const g = onlyPart(name, gate);
  const u = onlyPart(name, up);
  if (gate.type !== up.type || gate.rows !== up.rows || gate.cols !== up.cols || g.data !== u.data) {
    throw new KernelError(name, `${gate.label} ${gate.type} [${gate.rows}, ${gate.cols}] and ${up.label} ${up.type} [${up.rows}, ${up.cols}] must match, in one buffer`);
  }
  const yOffset = opts.yOffset ?? 0;
  if (x.numel < gate.cols) throw new KernelError(name, `x [${x.shape}] shorter than K=${gate.cols} of ${gate.label}`);
  if (y.numel < yOffset + gate.rows) throw new KernelError(name, `y [${y.shape}] shorter than ${yOffset} + N=${gate.rows}`);
  const normWeight = normKnob(name, opts.norm, gate.cols);
  checkNormInput(name, x, y);
  const c = matvecConfig(ctx, name, opts.config);
  dispatch(ctx.gpu, ctx.pass, ggufNormGateUpKernel, { ...matvecKnobs(gate, dtype, c), normWeight }, {
    buffers: [g.data, x.buffer, y.buffer, opts.norm.weight.buffer],
    uniforms: { K: gate.cols, rows: gate.rows, yOffset, rowBase: g.dataRow, upRow: u.dataRow - g.dataRow, eps: opts.norm.eps },
    workgroups: grid(Math.ceil(gate.rows / ((4 * c.wg) / c.tpr)), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

/**
 * y [yOffsets[i] + n] = (W_i x)[n] for each weight i (decode, batch 1; e.g. q, k, v into one
 * packed row), optionally with the norm folded in: one dispatch per run of weights adjacent in
 * one buffer (`ggufAdjacent`) whose outputs are adjacent too, else one per weight. Each output
 * equals ggufMatVec's for that weight exactly.
 */
export function ggufMatVecMulti(
  ctx: Ctx,
  ws: readonly GgufWeight[],
  x: Tensor,
  y: Tensor,
  yOffsets: readonly number[],
  opts: { norm?: FoldedNorm; config?: GgufMatVecConfig } = {},
): void {
  if (ws.length !== yOffsets.length) throw new KernelError('gguf_matvec', `${ws.length} weights with ${yOffsets.length} offsets`);
  let i = 0;
  while (i < ws.length) {
    let j = i + 1;
    while (j < ws.length && ggufAdjacent(ws[j - 1]!, ws[j]!) && yOffsets[j] === yOffsets[j - 1]! + ws[j - 1]!.rows) j++;
    const run = ws.slice(i, j);
    const first = run[0]!;
    const rows = run.reduce((a, w) => a + w.rows, 0);
    const w: GgufWeight = run.length === 1 ? first : { ...first, rows, parts: [{ ...first.parts[0]!, rows }], label: run.map((r) => r.label).join('|') };
    ggufMatVec(ctx, w, x, y, { yOffset: yOffsets[i], norm: opts.norm, config: opts.config });
    i = j;
  }
}

/**
 * Y [m, n] = sum_k X [m, k] W [n, k] for m < M, n < W.rows (prefill).
 * X: [M, K] row-major, f32 or f16; Y: the same dtype, [M, N] row-major.
 * `variant`: `tiled` (shaders/gguf_matmul.wgsl, 64 x 64 tiles) or `subgroupMatrix` (the adapter's
 * matrix units, f16 operands: shaders/subgroup_matrix_matmul.wgsl, in the checked `shape` unless
 * one is given); the default follows q4's (`defaultQ4MatMulVariant`: the device's check).
 */
export function ggufMatMul(
  ctx: Ctx,
  w: GgufWeight,
  x: Tensor,
  y: Tensor,
  M: number,
  opts: { variant?: 'tiled' | 'subgroupMatrix'; shape?: SubgroupMatrixShape } = {},
): void {
  const name = 'gguf_matmul';
  const dtype = checkAct(name, x, y);
  if (!(M > 0) || !Number.isInteger(M)) throw new KernelError(name, `M=${M}`);
  if (x.numel < M * w.cols) throw new KernelError(name, `X [${x.shape}] smaller than [${M}, ${w.cols}]`);
  if (y.numel < M * w.rows) throw new KernelError(name, `Y [${y.shape}] smaller than [${M}, ${w.rows}]`);
  const shape = subgroupMatrixToRun(ctx.gpu, name, opts);
  const tile = shape ? subgroupMatrixTile(shape) : GGUF_MATMUL_TILE;
  const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
  const tilesM = Math.ceil(M / tile);
  if (tilesM > max) throw new KernelError(name, `M=${M} needs ${tilesM} > ${max} workgroup rows`);
  for (const part of w.parts) {
    const args = {
      buffers: [part.data, x.buffer, y.buffer],
      uniforms: { M, K: w.cols, rows: part.rows, ldy: w.rows, yCol: part.rowStart, rowBase: part.dataRow },
      workgroups: [Math.ceil(part.rows / tile), tilesM] as const,
    };
    if (shape) {
      dispatch(ctx.gpu, ctx.pass, ggufMatMulSubgroupMatrixKernel, { type: w.type, dtype, ...shape }, args);
    } else {
      dispatch(ctx.gpu, ctx.pass, ggufMatMulKernel, { type: w.type, dtype, intcvt: ctx.gpu.isSoftware }, args);
    }
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
  if (table.parts.some((p) => p.dataRow)) throw new KernelError(name, `${table.label}: an embedding table must start its buffers (packed rows)`);
  for (const part of table.parts) {
    dispatch(ctx.gpu, ctx.pass, ggufEmbeddingKernel, { type: table.type, act: out.dtype, intcvt: ctx.gpu.isSoftware }, {
      buffers: [ids.buffer, out.buffer, part.data],
      uniforms: { T, H, rowStart: part.rowStart, rows: part.rows, vocab: table.rows },
      workgroups,
    });
  }
}
