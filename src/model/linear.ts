/**
 * A linear layer `y = x W^T (+ b)` whatever its storage: dense f32/f16 (vision encoder,
 * projector, f32/f16 decoders), 4-bit q4g32 (quantised decoders) or a ggml block format as a
 * GGUF stores it (`gguf`: Q4_K, Q6_K, ...; src/kernels/gguf.ts). Picks the kernel by the
 * storage and the number of rows: a matrix-vector kernel for one row (decode) and the tiled
 * matrix-matrix kernel otherwise (prefill, vision). Decode (one row) fusions: `linearGateUpSilu`
 * (gate, up and SiLU product in one dispatch) and `linearQkv` (q, k, v in one dispatch into one
 * packed row) and `linearAddInto` (a projection with the residual add as its epilogue), each
 * falling back to the unfused kernels when the weights do not allow it; for q4 and GGUF block
 * weights the RMSNorm feeding q/k/v, gate/up or lm_head folds into that dispatch too (`linearQkv`
 * with a norm, `linearNormGateUpSilu`, `linearNormed`). GGUF weights fuse where the loader stored
 * them back to back in one buffer (q|k|v, gate|up of one block type: `packGgufWeights`).
 */
import type { Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { matmul, type MatWeight } from '../kernels/matmul.js';
import { matvec, matvecGateUp, matvecGateUpSupported, matvecSupported } from '../kernels/matvec.js';
import { q4MatMul, q4MatVec, q4MatVecGateUp, q4MatVecMulti, type Q4Weight } from '../kernels/q4.js';
import type { FoldedNorm } from '../kernels/folded-norm.js';
import { ggufAdjacent, ggufMatMul, ggufMatVec, ggufMatVecGateUp, ggufMatVecMulti, ggufRowBytes, type GgufWeight } from '../kernels/gguf.js';
import { biasAddInPlace } from '../kernels/bias-add.js';
import { siluMul } from '../kernels/silu-mul.js';
import { addInPlace } from '../kernels/add.js';
import { rmsnorm } from '../kernels/rmsnorm.js';
import { KernelError } from '../errors.js';

export type LinearWeight = { kind: 'dense'; w: MatWeight } | { kind: 'q4'; w: Q4Weight } | { kind: 'gguf'; w: GgufWeight };

export interface Linear {
  /** Checkpoint key without `.weight`, e.g. `language_model.model.layers.3.self_attn.q_proj`. */
  name: string;
  outFeatures: number;
  inFeatures: number;
  weight: LinearWeight;
  bias?: Tensor; // [out] f32/f16
}

/** y [M, out] = x [M, in] W^T (+ b). x and y are views of exactly M rows. */
export function linear(ctx: Ctx, l: Linear, x: Tensor, y: Tensor, M: number): void {
  if (l.weight.kind === 'dense') {
    if (M === 1 && matvecSupported(l.weight.w)) {
      matvec(ctx, l.weight.w, x.view([l.inFeatures]), y.view([l.outFeatures]));
      if (l.bias) biasAddInPlace(ctx, y.view([1, l.outFeatures]), l.bias);
    } else {
      matmul(ctx, x.view([M, l.inFeatures]), l.weight.w, y.view([M, l.outFeatures]), { bias: l.bias, M });
    }
    return;
  }
  if (l.weight.kind === 'gguf') {
    if (M === 1) ggufMatVec(ctx, l.weight.w, x.view([l.inFeatures]), y.view([l.outFeatures]));
    else ggufMatMul(ctx, l.weight.w, x.view([M, l.inFeatures]), y.view([M, l.outFeatures]), M);
  } else if (M === 1) q4MatVec(ctx, l.weight.w, x.view([l.inFeatures]), y.view([l.outFeatures]));
  else q4MatMul(ctx, l.weight.w, x.view([M, l.inFeatures]), y.view([M, l.outFeatures]), M);
  if (l.bias) biasAddInPlace(ctx, y.view([M, l.outFeatures]), l.bias);
}

/**
 * residual [M, out] += x [M, in] W^T (+ b): a projection feeding the residual stream (o-proj,
 * down-proj). M = 1 with a q4 or GGUF block weight and no bias (and `fuse`): one dispatch, the
 * add being the matvec's epilogue (bit-identical to the unfused path). Otherwise `linear` into
 * `scratch` ([M, out]) and `addInPlace`.
 */
export function linearAddInto(ctx: Ctx, l: Linear, x: Tensor, residual: Tensor, M: number, scratch: Tensor, fuse = true): void {
  const out = residual.view([M, l.outFeatures]);
  if (fuse && M === 1 && !l.bias && l.weight.kind !== 'dense') {
    const xv = x.view([l.inFeatures]);
    const yv = out.view([l.outFeatures]);
    if (l.weight.kind === 'q4') q4MatVec(ctx, l.weight.w, xv, yv, { residual: true });
    else ggufMatVec(ctx, l.weight.w, xv, yv, { residual: true });
    return;
  }
  const y = scratch.view([M, l.outFeatures]);
  linear(ctx, l, x, y, M);
  addInPlace(ctx, out, y);
}

/** Bytes a decode step reads for this layer (weights + scales + bias). */
export function linearBytes(l: Linear): number {
  const n = l.outFeatures * l.inFeatures;
  const w =
    l.weight.kind === 'q4' ? n / 2 + (n / 32) * 2
    : l.weight.kind === 'gguf' ? l.outFeatures * ggufRowBytes(l.weight.w.type, l.inFeatures)
    : n * (l.weight.w.dtype === 'f16' ? 2 : 4);
  return w + (l.bias ? l.bias.byteLength : 0);
}

/**
 * The weights of these linears if a decode fusion can take them: all stored as `kind` (q4, or
 * GGUF blocks) in a single row part (one binding each), the same input width, no bias; else null.
 */
function fusable<K extends keyof BlockWeightOf>(ls: readonly Linear[], kind: K): BlockWeightOf[K][] | null {
  const ws: BlockWeightOf[K][] = [];
  for (const l of ls) {
    if (l.weight.kind !== kind || l.weight.w.parts.length !== 1 || l.bias || l.inFeatures !== ls[0]!.inFeatures) return null;
    ws.push(l.weight.w as BlockWeightOf[K]);
  }
  return ws;
}

/** The weight type of each quantised storage kind the decode fusions take. */
type BlockWeightOf = { q4: Q4Weight; gguf: GgufWeight };

/**
 * out [M, I] = silu(x gate^T) * (x up^T) for x [M, D] (the first half of a gated MLP).
 * M = 1 with gate and up both q4 in one part each, or both dense of one dtype in one part each
 * with K % 4 == 0, no bias: one fused dispatch (bit-identical in f32 to the unfused path).
 * Otherwise (or with `fuse` false) gate and up go to `scratch` ([M, I] each) and `siluMul`
 * combines them.
 */
export function linearGateUpSilu(
  ctx: Ctx,
  gate: Linear,
  up: Linear,
  x: Tensor,
  out: Tensor,
  M: number,
  scratch: { gate: Tensor; up: Tensor },
  fuse = true,
): void {
  const I = gate.outFeatures;
  if (fuse && M === 1 && canFuseGateUp(gate, up)) {
    const xv = x.view([gate.inFeatures]);
    const yv = out.view([I]);
    if (gate.weight.kind === 'q4' && up.weight.kind === 'q4') q4MatVecGateUp(ctx, gate.weight.w, up.weight.w, xv, yv);
    else if (gate.weight.kind === 'dense' && up.weight.kind === 'dense') matvecGateUp(ctx, gate.weight.w, up.weight.w, xv, yv);
    return;
  }
  const g = scratch.gate.view([M, I]);
  const u = scratch.up.view([M, I]);
  linear(ctx, gate, x, g, M);
  linear(ctx, up, x, u, M);
  siluMul(ctx, g, u, out.view([M, I]));
}

/**
 * Whether `linearGateUpSilu` fuses these at M = 1: the same shape, no bias, and both q4 in one
 * row part each or both dense (same dtype, one part each, K % 4 == 0).
 */
export function canFuseGateUp(gate: Linear, up: Linear): boolean {
  if (gate.outFeatures !== up.outFeatures || gate.inFeatures !== up.inFeatures || gate.bias || up.bias) return false;
  if (gate.weight.kind === 'dense' && up.weight.kind === 'dense') return matvecGateUpSupported(gate.weight.w, up.weight.w);
  return fusable([gate, up], 'q4') !== null;
}

/**
 * out [1, I] = silu(n gate^T) * (n up^T) with n = rmsnorm(x) * norm.weight for the residual
 * stream x [1, D] (decode): the MLP's input norm, gate, up and SiLU in one dispatch, bit-identical
 * to rmsnorm then `linearGateUpSilu`. Needs `canFoldNormGateUp(gate, up)`.
 */
export function linearNormGateUpSilu(ctx: Ctx, gate: Linear, up: Linear, norm: FoldedNorm, x: Tensor, out: Tensor): void {
  if (!canFoldNormGateUp(gate, up)) throw new KernelError('linear_norm_gate_up', `${gate.name}, ${up.name} cannot take a folded norm (see canFoldNormGateUp)`);
  const xv = x.view([gate.inFeatures]);
  const yv = out.view([gate.outFeatures]);
  const q4 = fusable([gate, up], 'q4');
  const gguf = q4 ? null : fusable([gate, up], 'gguf');
  if (q4) q4MatVecGateUp(ctx, q4[0]!, q4[1]!, xv, yv, { norm });
  else if (gguf) ggufMatVecGateUp(ctx, gguf[0]!, gguf[1]!, xv, yv, { norm });
}

/**
 * y [1, out] = n W^T with n = rmsnorm(x) * norm.weight for one row x [1, in] (decode: the final
 * norm and lm_head). A q4 or GGUF block weight without bias: one dispatch per row part, the norm folded in;
 * otherwise rmsnorm into `scratch` ([1, in]) and `linear`. Bit-identical either way.
 */
export function linearNormed(ctx: Ctx, l: Linear, norm: FoldedNorm, x: Tensor, y: Tensor, scratch: Tensor, fuse = true): void {
  if (fuse && l.weight.kind !== 'dense' && !l.bias) {
    const xv = x.view([l.inFeatures]);
    const yv = y.view([l.outFeatures]);
    if (l.weight.kind === 'q4') q4MatVec(ctx, l.weight.w, xv, yv, { norm });
    else ggufMatVec(ctx, l.weight.w, xv, yv, { norm });
    return;
  }
  const h = scratch.view([1, l.inFeatures]);
  rmsnorm(ctx, x.view([1, l.inFeatures]), norm.weight, h, norm.eps);
  linear(ctx, l, h, y, 1);
}

/**
 * Whether `linearNormGateUpSilu` takes these: gate and up fusable and both q4, or both GGUF block
 * weights stored back to back in one buffer (same type and shape).
 */
export function canFoldNormGateUp(gate: Linear, up: Linear): boolean {
  if (canFuseGateUp(gate, up)) return gate.weight.kind === 'q4';
  const g = fusable([gate, up], 'gguf');
  return !!g && gate.outFeatures === up.outFeatures && ggufAdjacent(g[0]!, g[1]!);
}

/**
 * Whether `linearQkv` takes q, k, v: q4 in one part each (one dispatch), or GGUF block weights
 * in one part each (one dispatch per run stored back to back: 1 when q|k|v share a type, 2 when
 * v's differs as in Q4_K_M), no bias.
 */
export function canFuseQkv(q: Linear, k: Linear, v: Linear): boolean {
  return fusable([q, k, v], 'q4') !== null || fusable([q, k, v], 'gguf') !== null;
}

/**
 * The q, k, v projections of one row x [1, D] in one dispatch (GGUF: one per run of weights
 * stored back to back), into one packed row
 * y [1, Nq + Nk + Nv] = [x q^T | x k^T | x v^T] (decode). Needs `canFuseQkv(q, k, v)`. With
 * `norm`, x is the residual stream and the projections read rmsnorm(x) * norm.weight (the
 * attention's input norm folded in, bit-identical to running rmsnorm first).
 */
export function linearQkv(ctx: Ctx, q: Linear, k: Linear, v: Linear, x: Tensor, y: Tensor, norm?: FoldedNorm): void {
  const width = q.outFeatures + k.outFeatures + v.outFeatures;
  const offsets = [0, q.outFeatures, q.outFeatures + k.outFeatures];
  const xv = x.view([q.inFeatures]);
  const yv = y.view([width]);
  const q4 = fusable([q, k, v], 'q4');
  const gguf = q4 ? null : fusable([q, k, v], 'gguf');
  if (q4) q4MatVecMulti(ctx, q4, xv, yv, offsets, { norm });
  else if (gguf) ggufMatVecMulti(ctx, gguf, xv, yv, offsets, { norm });
  else throw new KernelError('linear_qkv', `${q.name}, ${k.name}, ${v.name} cannot be fused (see canFuseQkv)`);
}
