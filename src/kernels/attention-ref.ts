/**
 * Float64 CPU reference for attention: full score rows, max-subtracted softmax, GQA head mapping
 * h -> h / (H / H_kv), a per-query key range [start, end) (causal or block-diagonal).
 * Tensors are plain [rows, heads, d] arrays. The kernel tests compare with it, and so does the
 * on-device check of the subgroup-matrix kernels (subgroup-matrix-check.ts).
 */

export interface AttnRefArgs {
  heads: number;
  kvHeads: number;
  d: number;
  scale: number;
  /** Key range of query row t. */
  range: (t: number) => [number, number];
  /** Query rows to compute (default all); the result holds them in this order. */
  rows?: readonly number[];
}

/** Returns out [rows.length, heads, d] in float64. */
export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, tokens: number, a: AttnRefArgs): Float64Array {
  const { heads, kvHeads, d, scale } = a;
  const rows = a.rows ?? Array.from({ length: tokens }, (_, i) => i);
  const group = heads / kvHeads;
  const out = new Float64Array(rows.length * heads * d);
  rows.forEach((t, ri) => {
    const [s, e] = a.range(t);
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const qb = (t * heads + h) * d;
      const sc = new Float64Array(Math.max(e - s, 0));
      let m = -Infinity;
      for (let j = s; j < e; j++) {
        const kb = (j * kvHeads + g) * d;
        let acc = 0;
        for (let x = 0; x < d; x++) acc += q[qb + x]! * k[kb + x]!;
        sc[j - s] = acc * scale;
        if (sc[j - s]! > m) m = sc[j - s]!;
      }
      let l = 0;
      for (let j = 0; j < sc.length; j++) {
        sc[j] = Math.exp(sc[j]! - m);
        l += sc[j]!;
      }
      const ob = (ri * heads + h) * d;
      for (let j = s; j < e; j++) {
        const w = sc[j - s]! / l;
        const vb = (j * kvHeads + g) * d;
        for (let x = 0; x < d; x++) out[ob + x] = out[ob + x]! + w * v[vb + x]!;
      }
    }
  });
  return out;
}
