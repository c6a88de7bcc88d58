/**
 * A linear layer `y = x W^T (+ b)` whatever its storage: dense f32/f16 (vision encoder,
 * projector, f32/f16 decoders) or 4-bit q4g32 (quantised decoders). Picks the kernel by the
 * storage and the number of rows: a matrix-vector kernel for one row (decode) and the tiled
 * matrix-matrix kernel otherwise (prefill, vision).
 */
import type { Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { matmul, type MatWeight } from '../kernels/matmul.js';
import { matvec, matvecSupported } from '../kernels/matvec.js';
import { q4MatMul, q4MatVec, type Q4Weight } from '../kernels/q4.js';
import { biasAddInPlace } from '../kernels/bias-add.js';

export type LinearWeight = { kind: 'dense'; w: MatWeight } | { kind: 'q4'; w: Q4Weight };

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
  if (M === 1) q4MatVec(ctx, l.weight.w, x.view([l.inFeatures]), y.view([l.outFeatures]));
  else q4MatMul(ctx, l.weight.w, x.view([M, l.inFeatures]), y.view([M, l.outFeatures]), M);
  if (l.bias) biasAddInPlace(ctx, y.view([M, l.outFeatures]), l.bias);
}

/** Bytes a decode step reads for this layer (weights + scales + bias). */
export function linearBytes(l: Linear): number {
  const n = l.outFeatures * l.inFeatures;
  const w = l.weight.kind === 'q4' ? n / 2 + (n / 32) * 2 : n * (l.weight.w.dtype === 'f16' ? 2 : 4);
  return w + (l.bias ? l.bias.byteLength : 0);
}
