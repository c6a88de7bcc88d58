/**
 * Float64 CPU references for matmul (Y = X @ W^T + b), im2col and the stride == kernel conv of
 * the patch embedding. Each dot product also returns sum |x_k w_k| (+ |b|): the scale the f32
 * rounding-error bound of the GPU result is stated against.
 */

export interface DotRef {
  /** [rows.length, N] exact (float64) results for the requested rows. */
  y: Float64Array;
  /** [rows.length, N] sum_k |x[m, k] * w[n, k]| + |b[n]|. */
  absSum: Float64Array;
}

/** Y[m, n] = sum_k x[m, k] w[n, k] + bias[n] for m in `rows` (default all M rows). */
export function matmulRef(
  x: ArrayLike<number>, // [M, K]
  w: ArrayLike<number>, // [N, K]
  M: number,
  N: number,
  K: number,
  bias?: ArrayLike<number>, // [N]
  rows: readonly number[] = Array.from({ length: M }, (_, i) => i),
): DotRef {
  const y = new Float64Array(rows.length * N);
  const absSum = new Float64Array(rows.length * N);
  rows.forEach((m, r) => {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0;
      let a = bias ? Math.abs(bias[n]!) : 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k]! * w[n * K + k]!;
        s += p;
        a += Math.abs(p);
      }
      y[r * N + n] = s;
      absSum[r * N + n] = a;
    }
  });
  return { y, absSum };
}

/** Patch rows [(H/p) * (W/p), C * p * p] of img [C, H, W], columns in (c, ky, kx) order. */
export function im2colRef(img: ArrayLike<number>, C: number, H: number, W: number, p: number): Float64Array {
  const rows = H / p;
  const cols = W / p;
  const len = C * p * p;
  const out = new Float64Array(rows * cols * len);
  for (let py = 0; py < rows; py++)
    for (let px = 0; px < cols; px++)
      for (let c = 0; c < C; c++)
        for (let ky = 0; ky < p; ky++)
          for (let kx = 0; kx < p; kx++)
            out[(py * cols + px) * len + (c * p + ky) * p + kx] = img[(c * H + py * p + ky) * W + px * p + kx]!;
  return out;
}

/**
 * Direct convolution, stride = kernel = p, no bias, written independently of im2col:
 * out[(py * cols + px), o] = sum_{c, ky, kx} weight[o, c, ky, kx] * img[c, py*p + ky, px*p + kx].
 */
export function patchConvRef(
  img: ArrayLike<number>, // [C, H, W]
  weight: ArrayLike<number>, // [O, C, p, p]
  C: number,
  H: number,
  W: number,
  O: number,
  p: number,
): DotRef {
  const rows = H / p;
  const cols = W / p;
  const y = new Float64Array(rows * cols * O);
  const absSum = new Float64Array(rows * cols * O);
  for (let py = 0; py < rows; py++)
    for (let px = 0; px < cols; px++)
      for (let o = 0; o < O; o++) {
        let s = 0;
        let a = 0;
        for (let c = 0; c < C; c++)
          for (let ky = 0; ky < p; ky++)
            for (let kx = 0; kx < p; kx++) {
              const v = weight[((o * C + c) * p + ky) * p + kx]! * img[(c * H + py * p + ky) * W + px * p + kx]!;
              s += v;
              a += Math.abs(v);
            }
        y[(py * cols + px) * O + o] = s;
        absSum[(py * cols + px) * O + o] = a;
      }
  return { y, absSum };
}
