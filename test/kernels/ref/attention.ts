/**
 * Test-side helpers beside the float64 attention reference (src/kernels/attention-ref.ts): row
 * picking, q, k and v split from a fused qkv (whole, or a causal prefill's with its history), and the bound for the f16-operand
 * kernel.
 */
import type { AttnRefArgs } from '../../../src/kernels/attention-ref.js';

/** Picks rows `rows` of a [T, width] array. */
export function takeRows(x: ArrayLike<number>, width: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    for (let j = 0; j < width; j++) out[i * width + j] = x[r * width + j]!;
  });
  return out;
}

/** q, k and v [T, width] each, split from a fused activation [T, 3 width] (q | k | v per row). */
export function splitFusedQkv(qkv: ArrayLike<number>, T: number, width: number): [Float32Array, Float32Array, Float32Array] {
  const part = (p: number) => {
    const o = new Float32Array(T * width);
    for (let t = 0; t < T; t++) for (let j = 0; j < width; j++) o[t * width + j] = qkv[t * 3 * width + p * width + j]!;
    return o;
  };
  return [part(0), part(1), part(2)];
}

/**
 * The reference's inputs after a causal prefill: q [T, H, d] taken from the fused qkv rows
 * [T, (H + 2 KV) d], and the cache's rows 0..pos0+T-1 (the history, then each row's k and v).
 */
export function splitFusedPrefill(
  qkv: Float32Array, histK: Float32Array, histV: Float32Array, T: number, pos0: number, H: number, KV: number, d: number,
): { qh: Float32Array; kAll: Float32Array; vAll: Float32Array } {
  const row = (H + 2 * KV) * d;
  const kAll = new Float32Array((pos0 + T) * KV * d);
  const vAll = new Float32Array((pos0 + T) * KV * d);
  kAll.set(histK);
  vAll.set(histV);
  const qh = new Float32Array(T * H * d);
  for (let t = 0; t < T; t++) {
    qh.set(qkv.subarray(t * row, t * row + H * d), t * H * d);
    kAll.set(qkv.subarray(t * row + H * d, t * row + (H + KV) * d), (pos0 + t) * KV * d);
    vAll.set(qkv.subarray(t * row + (H + KV) * d, (t + 1) * row), (pos0 + t) * KV * d);
  }
  return { qh, kAll, vAll };
}

/**
 * Per-output bound on |got - attentionRef| for attention whose operands are rounded to f16 once
 * (shaders/attention_prefill_subgroup_matrix.wgsl): scale q always; k, v where `rounded` says the
 * kernel rounds them (f32 values; an f16 cache or f16 activations are exact); each weight
 * exp(s - m) (the sum l adds the rounded weights); the output where stored as f16.
 * Score j of a row moves by e_j <= (2^-11 (1 + k) + D 2^-24) sum_d |scale q_d k_jd| (the f32 dot
 * product's own error beside the roundings), a weight's rounding adds 2^-11: with E the row's largest
 * such move, every normalised weight w_j moves by at most w_j (e^{2E} - 1), so an output moves by at most
 * (e^{2E} - 1 + 2^-11 v + n 2^-24) sum_j w_j |v_j| (n keys summed in f32) + 2^-11 |o| (f16 store).
 */
export function attentionF16Bound(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, tokens: number, a: AttnRefArgs,
  rounded: { k: boolean; v: boolean; out: boolean },
): Float64Array {
  const { heads, kvHeads, d, scale } = a;
  const u = 2 ** -11;
  const group = heads / kvHeads;
  const out = new Float64Array(tokens * heads * d);
  for (let t = 0; t < tokens; t++) {
    const [s, e] = a.range(t);
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const qb = (t * heads + h) * d;
      const sc = new Float64Array(Math.max(e - s, 0));
      let m = -Infinity;
      let E = 0;
      for (let j = s; j < e; j++) {
        const kb = (j * kvHeads + g) * d;
        let acc = 0;
        let mag = 0;
        for (let x = 0; x < d; x++) {
          acc += q[qb + x]! * k[kb + x]!;
          mag += Math.abs(q[qb + x]! * k[kb + x]!);
        }
        sc[j - s] = acc * scale;
        m = Math.max(m, sc[j - s]!);
        E = Math.max(E, (u * (1 + (rounded.k ? 1 : 0)) + d * 2 ** -24) * mag * scale + u);
      }
      let l = 0;
      for (let j = 0; j < sc.length; j++) l += (sc[j] = Math.exp(sc[j]! - m));
      const factor = Math.expm1(2 * E) + (rounded.v ? u : 0) + sc.length * 2 ** -24;
      const ob = (t * heads + h) * d;
      for (let x = 0; x < d; x++) {
        let wv = 0;
        let o = 0;
        for (let j = s; j < e; j++) {
          const val = v[(j * kvHeads + g) * d + x]!;
          wv += (sc[j - s]! / l) * Math.abs(val);
          o += (sc[j - s]! / l) * val;
        }
        out[ob + x] = factor * wv + (rounded.out ? u * Math.abs(o) : 0) + 1e-7;
      }
    }
  }
  return out;
}
