/**
 * Float64 CPU references for RoPE, written the way Hugging Face writes them (full-length cos/sin
 * vectors, `x * cos + rotate_half(x) * sin`) rather than the kernel's pair form, so a layout
 * mistake in either shows up.
 */

/** rotate_half(x) = cat(-x[d/2:], x[:d/2]). */
function rotateHalf(x: Float64Array): Float64Array {
  const d = x.length;
  const h = d / 2;
  const out = new Float64Array(d);
  for (let i = 0; i < h; i++) {
    out[i] = -x[i + h]!;
    out[i + h] = x[i]!;
  }
  return out;
}

/** Applies angles emb [d] (= cat(a, a)) to every head of token t in x [T, heads, d]. */
function applyRow(x: ArrayLike<number>, out: Float64Array, t: number, heads: number, d: number, emb: Float64Array, af: number, qs: number): void {
  for (let h = 0; h < heads; h++) {
    const base = (t * heads + h) * d;
    const v = new Float64Array(d);
    for (let j = 0; j < d; j++) v[j] = x[base + j]!;
    const r = rotateHalf(v);
    for (let j = 0; j < d; j++) out[base + j] = (v[j]! * Math.cos(emb[j]!) * af + r[j]! * Math.sin(emb[j]!) * af) * qs;
  }
}

/**
 * 1D RoPE of x [T, heads, d] at `positions[t]` with inverse frequencies `invFreq` [d/2], cos/sin
 * times `attnFactor`, then x *= 1 + beta ln(1 + floor(pos/orig)) (Llama-4 query scale).
 */
export function ropeRef(
  x: ArrayLike<number>,
  T: number,
  heads: number,
  d: number,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  attnFactor = 1,
  beta = 0,
  orig = 1,
): Float64Array {
  const out = new Float64Array(T * heads * d);
  for (let t = 0; t < T; t++) {
    const pos = positions[t]!;
    const emb = new Float64Array(d);
    for (let i = 0; i < d / 2; i++) emb[i] = emb[i + d / 2] = pos * invFreq[i]!;
    const qs = 1 + beta * Math.log(1 + Math.floor(pos / orig));
    applyRow(x, out, t, heads, d, emb, attnFactor, qs);
  }
  return out;
}

/**
 * Pixtral-ViT 2D RoPE as HF's PixtralRotaryEmbedding builds it: freqs = theta^(-arange(0,d,2)/d),
 * freqs_h = outer(arange(G), freqs[0::2]), freqs_w = outer(arange(G), freqs[1::2]); the table row
 * of position id row*G + col is cat(freqs_h[row], freqs_w[col]), duplicated to length d.
 */
export function visionRopeRef(
  x: ArrayLike<number>,
  heads: number,
  d: number,
  theta: number,
  gridSide: number,
  coords: readonly { row: number; col: number }[],
): Float64Array {
  const freqs: number[] = [];
  for (let k = 0; k < d; k += 2) freqs.push(1 / Math.pow(theta, k / d));
  const even = freqs.filter((_, i) => i % 2 === 0);
  const odd = freqs.filter((_, i) => i % 2 === 1);
  // inv_freq table indexed by position id = row * G + col.
  const table: Float64Array[] = [];
  for (let r = 0; r < gridSide; r++) {
    for (let c = 0; c < gridSide; c++) {
      const half = [...even.map((f) => r * f), ...odd.map((f) => c * f)];
      table.push(Float64Array.from([...half, ...half]));
    }
  }
  const T = coords.length;
  const out = new Float64Array(T * heads * d);
  coords.forEach(({ row, col }, t) => applyRow(x, out, t, heads, d, table[row * gridSide + col]!, 1, 1));
  return out;
}
