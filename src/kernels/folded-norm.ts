/**
 * An RMSNorm folded into the matrix-vector kernel that consumes it (decode): the kernel reads the
 * residual stream x and uses rmsnorm(x) * weight, with rmsnorm.wgsl's sums and rounding
 * (shaders/matvec_common.wgsl), so the result is bit-identical to running rmsnorm first. Shared
 * by the q4 (src/kernels/q4.ts) and GGUF block (src/kernels/gguf.ts) matvecs.
 */
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';

export interface FoldedNorm {
  /** [K] f32 or f16. */
  weight: Tensor;
  eps: number;
}

/** The dtype of a folded norm's weight (the NORM / NORM_F16 defines), or none. */
export type NormWeightKnob = 'none' | 'f32' | 'f16';

/** Checks a folded norm against the kernel's K: its weight's dtype, or 'none' without a norm. */
export function normKnob(name: string, norm: FoldedNorm | undefined, K: number): NormWeightKnob {
  if (!norm) return 'none';
  const w = norm.weight;
  if (w.numel !== K || (w.dtype !== 'f32' && w.dtype !== 'f16')) {
    throw new KernelError(name, `norm weight ${w.label} [${w.shape}] ${w.dtype} must be [${K}] f32/f16`);
  }
  if (!(norm.eps >= 0)) throw new KernelError(name, `norm eps ${norm.eps}`);
  return w.dtype;
}

/** A folded norm reads x whole: it must be exactly [K] of its own buffer, not the output's. */
export function checkNormInput(name: string, x: Tensor, y: Tensor): void {
  if (x.buffer === y.buffer) throw new KernelError(name, `norm: x ${x.label} and y ${y.label} must be different buffers`);
}
