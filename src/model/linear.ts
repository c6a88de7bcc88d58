/**
 * A linear layer `y = x W^T (+ b)` whatever its storage: dense f32/f16 (vision encoder,
 * projector, f32/f16 decoders), 4-bit q4g32 (quantised decoders) or a ggml block format as a
 * GGUF stores it (`gguf`: Q4_K, Q6_K, ...; src/kernels/gguf.ts; no decode fusion yet). Picks the kernel by the
 * storage and the number of rows: a matrix-vector kernel for one row (decode) and the tiled
 * matrix-matrix kernel otherwise (prefill, vision). Decode (one row) fusions: `linearGateUpSilu`
 * (gate, up and SiLU product in one dispatch) and `linearQkv` (q, k, v in one dispatch into one
 * packed row), each falling back to the unfused kernels when the weights do not allow it.
 */
import type { Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { matmul, type MatWeight } from '../kernels/matmul.js';
import { matvec, matvecGateUp, matvecGateUpSupported, matvecSupported } from '../kernels/matvec.js';
import { q4MatMul, q4MatVec, q4MatVecGateUp, q4MatVecMulti, type Q4Weight } from '../kernels/q4.js';
import { ggufMatMul, ggufMatVec, ggufRowBytes, type GgufWeight } from '../kernels/gguf.js';
import { biasAddInPlace } from '../kernels/bias-add.js';
import { siluMul } from '../kernels/silu-mul.js';
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
 * The q4 weights of these linears if a q4 decode fusion can take them: all q4 in a single row
 * part (one binding each), the same input width, no bias; else null.
 */
function fusableQ4(ls: readonly Linear[]): Q4Weight[] | null {
  const ws: Q4Weight[] = [];
  for (const l of ls) {
    if (l.weight.kind !== 'q4' || l.weight.w.parts.length !== 1 || l.bias || l.inFeatures !== ls[0]!.inFeatures) return null;
    ws.push(l.weight.w);
  }
  return ws;
}

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
  return fusableQ4([gate, up]) !== null;
}

/** Whether `linearQkv` runs q, k, v as one dispatch (q4 in one part each, no bias). */
export function canFuseQkv(q: Linear, k: Linear, v: Linear): boolean {
  return fusableQ4([q, k, v]) !== null;
}

/**
 * The q, k, v projections of one row x [1, D] in one dispatch, into one packed row
 * y [1, Nq + Nk + Nv] = [x q^T | x k^T | x v^T] (decode). Needs `canFuseQkv(q, k, v)`.
 */
export function linearQkv(ctx: Ctx, q: Linear, k: Linear, v: Linear, x: Tensor, y: Tensor): void {
  const ws = fusableQ4([q, k, v]);
  if (!ws) throw new KernelError('linear_qkv', `${q.name}, ${k.name}, ${v.name} cannot be fused (see canFuseQkv)`);
  const width = q.outFeatures + k.outFeatures + v.outFeatures;
  q4MatVecMulti(ctx, ws, x.view([q.inFeatures]), y.view([width]), [0, q.outFeatures, q.outFeatures + k.outFeatures]);
}
