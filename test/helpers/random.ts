/** Deterministic random numbers for tests and benchmarks (mulberry32 + Box-Muller). */
import { seededUniforms } from '../../src/util/random.js';

/** Uniform [0, 1) numbers: the library's seeded stream (mulberry32). */
export const rng = seededUniforms;

export function randn(n: number, seed: number, std = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u() || 1e-12));
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(th) * std;
  }
  return out;
}

export function randu(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * u();
  return out;
}
