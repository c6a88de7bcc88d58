/** Float64 CPU references for rmsnorm, silu_mul, gelu (with an accurate float64 erf/erfc) and bias_add. */

/** y[r, c] = x[r, c] / sqrt(mean(x[r, :]^2) + eps) * w[c]. */
export function rmsnormRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, cols: number, eps: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[r * cols + c]! ** 2;
    const inv = 1 / Math.sqrt(s / cols + eps);
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c]! * inv * w[c]!;
  }
  return y;
}

export function silu(g: number): number {
  return g / (1 + Math.exp(-g));
}

/** out[i] = silu(gate[i]) * up[i]. */
export function siluMulRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => silu(gate[i]!) * up[i]!);
}

/**
 * erfc(z) in float64 for z >= 0: below 2 as 1 - erf with erf from the all-positive series
 * erf(z) = 2/sqrt(pi) e^{-z^2} sum_n 2^n z^{2n+1} / (1*3*...*(2n+1)) (no cancellation; 1 - erf
 * loses at most 3 digits since erfc(2) = 4.7e-3); from 2 up the Laplace continued fraction
 * erfc(z) = e^{-z^2}/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), evaluated bottom-up.
 */
export function erfc64(z: number): number {
  if (z < 0) return 2 - erfc64(-z);
  if (z < 2) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && term > 1e-18 * sum; n++) {
      term *= (2 * z * z) / (2 * n + 1);
      sum += term;
    }
    return 1 - ((2 / Math.sqrt(Math.PI)) * Math.exp(-z * z) * sum);
  }
  let f = z;
  for (let n = 300; n >= 1; n--) f = z + n / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

export function erf64(z: number): number {
  return z < 0 ? -erf64(-z) : 1 - erfc64(z);
}

/** Exact GELU 0.5 x (1 + erf(x / sqrt 2)), tail-accurate for x < 0. */
export function gelu64(x: number): number {
  const e = erfc64(Math.abs(x) / Math.SQRT2);
  return x >= 0 ? x * (1 - 0.5 * e) : 0.5 * x * e;
}

/** x[t, n] + b[n] rounded once to f32, which is what one f32 add returns. */
export function biasAddRef(x: ArrayLike<number>, b: ArrayLike<number>, N: number): Float32Array {
  return Float32Array.from({ length: x.length }, (_, i) => x[i]! + b[i % N]!);
}
