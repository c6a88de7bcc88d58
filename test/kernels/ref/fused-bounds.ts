/**
 * Float64 references and error bounds shared by the decode-fusion kernel tests (fused.test.ts for
 * q4, gguf-fused.test.ts for GGUF blocks): a projection row's bound C u sqrt(K) mag, the gate/up
 * + SiLU bound propagated from it, and the folded RMSNorm's input bound. Derivations in the
 * comments of each, and in fused.test.ts's header.
 */
import { expect } from 'vitest';
import { silu } from './elementwise.js';
import { U32 } from './q4.js';

export const C = 4;
export const FTZ = 2 ** -126;
type Act = 'f32' | 'f16';

/** One gate/up reference row: float64 value and its tolerance (see fused.test.ts's header). */
export interface GateUpRef {
  ref: number;
  tol: number;
}

/** normRel: the relative error bound of a folded norm's inputs (`foldedNormRel`), 0 without. */
export function gateUpRef(g: number, magG: number, u: number, magU: number, K: number, dtype: Act, normRel = 0): GateUpRef {
  const eg = projErr(magG, K, normRel);
  const eu = projErr(magU, K, normRel);
  const ref = silu(g) * u;
  const prop = 1.1 * eg * (Math.abs(u) + eu) + Math.abs(silu(g)) * eu;
  const evalErr = (9 + 2 * (Math.abs(g) + eg)) * U32 * (Math.abs(silu(g)) + 1.1 * eg) * (Math.abs(u) + eu);
  const store = dtype === 'f16' ? 2 ** -11 * Math.abs(ref) : 0;
  return { ref, tol: prop + evalErr + store + FTZ };
}

/**
 * The error bound of one projection row: C u sqrt(K) mag (the matvec's sums) and, when a norm is
 * folded in, normRel mag (its inputs n_k off by at most normRel relative; the sums are then
 * over |n~| <= (1 + normRel) |n|).
 */
export function projErr(mag: number, K: number, normRel: number): number {
  return (C * U32 * Math.sqrt(K) * (1 + normRel) + normRel) * mag;
}

/** Worst |got - ref| / tol over the rows; fails past 1 with the first offending row. */
export function checkTol(got: ArrayLike<number>, refs: readonly GateUpRef[], what: string, index: (i: number) => number = (i) => i): number {
  let worst = 0;
  refs.forEach((r, i) => {
    const g = got[index(i)]!;
    const ratio = Math.abs(g - r.ref) / r.tol;
    if (!(ratio <= 1)) expect.fail(`${what}: [${index(i)}] got ${g} want ${r.ref} (err ${ratio.toFixed(2)} x tol ${r.tol})`);
    worst = Math.max(worst, ratio);
  });
  return worst;
}

/**
 * Relative error bound of the normed inputs n~_k = act(x_k * inv~ * w_k) against the float64
 * n_k = x_k w_k / sqrt(mean(x^2) + eps): the sum of squares has positive terms, each of the 256
 * lanes sums K/256 of them, then an 8-level tree, so it is off by at most (K/256 + 8) u relative;
 * / K, + eps, sqrt (which halves a relative error), 1/ add u each: inv~ within (K/512 + 7) u; the
 * two products 2u more; an f16 activation rounds n to f16 (2^-11).
 */
export function foldedNormRel(K: number, dtype: Act): number {
  return (K / 512 + 9) * U32 + (dtype === 'f16' ? 2 ** -11 : 0);
}

/** float64 rmsnorm(x) * w. */
export function normRef(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from({ length: x.length }, (_, i) => x[i]! * inv * w[i]!);
}
