/**
 * `npx tsx bench/quant-error.ts [--rows N] [--cols K]`: measured error of the q4g32 format
 * (src/quant/q4.ts) on Gaussian weights against the f32 originals, for docs/quantization.md:
 * relative RMS error of the dequantised weights and of matrix-vector outputs (Gaussian x), with
 * f16 and bf16 storage of the same weights for scale. Also a heavy-tailed (Student t, 3 degrees
 * of freedom) matrix, closer to real LLM weights with outliers. Pure CPU, float64 sums.
 */
import { Q4_BITS_PER_WEIGHT, dequantizeQ4, quantizeQ4 } from '../src/quant/q4.js';
import { roundF16 } from '../src/util/f16.js';
import { randn, rng } from '../test/helpers/random.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const N = arg('rows', 1024);
const K = arg('cols', 5120);
const VECTORS = 8;

function relRms(approx: ArrayLike<number>, exact: ArrayLike<number>): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < exact.length; i++) {
    e += (approx[i]! - exact[i]!) ** 2;
    s += exact[i]! ** 2;
  }
  return Math.sqrt(e / s);
}

function matvec(w: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    let acc = 0;
    for (let k = 0; k < K; k++) acc += w[r * K + k]! * x[k]!;
    y[r] = acc;
  }
  return y;
}

function bf16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  u[0] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) & 0xffff0000;
  return f[0]!;
}

/** Student t with 3 degrees of freedom, scaled to unit variance (variance of t3 is 3). */
function studentT3(n: number, seed: number): Float32Array {
  const z = randn(n + 3 * n, seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const chi = z[n + 3 * i]! ** 2 + z[n + 3 * i + 1]! ** 2 + z[n + 3 * i + 2]! ** 2;
    out[i] = z[i]! / Math.sqrt(chi / 3) / Math.sqrt(3);
  }
  return out;
}

function measure(name: string, w: Float32Array): Record<string, string> {
  const q = dequantizeQ4(quantizeQ4(w, N, K));
  const h = Float32Array.from(w, roundF16);
  const b = Float32Array.from(w, bf16);
  const u = rng(99);
  let yq = 0;
  let yh = 0;
  let yb = 0;
  const eq: number[] = [];
  for (let v = 0; v < VECTORS; v++) {
    const x = randn(K, 1000 + v + Math.floor(u() * 1000));
    const exact = matvec(w, x);
    const e = relRms(matvec(q, x), exact);
    eq.push(e);
    yq += e / VECTORS;
    yh += relRms(matvec(h, x), exact) / VECTORS;
    yb += relRms(matvec(b, x), exact) / VECTORS;
  }
  const pct = (v: number) => `${(100 * v).toFixed(3)}%`;
  return {
    weights: name,
    'q4g32 W rel RMS': pct(relRms(q, w)),
    'q4g32 Wx rel RMS': `${pct(yq)} (${pct(Math.min(...eq))}..${pct(Math.max(...eq))})`,
    'f16 W': pct(relRms(h, w)),
    'f16 Wx': pct(yh),
    'bf16 W': pct(relRms(b, w)),
    'bf16 Wx': pct(yb),
  };
}

const t0 = Date.now();
const rows = [measure('Gaussian', randn(N * K, 7, 0.02)), measure('Student t3', studentT3(N * K, 8).map((v) => v * 0.02))];
console.log(`q4g32: ${Q4_BITS_PER_WEIGHT} bits/weight; W [${N}, ${K}], ${VECTORS} Gaussian x per matrix, float64 sums`);
const cols = Object.keys(rows[0]!);
const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c]!.length)));
console.log(cols.map((c, i) => c.padEnd(width[i]!)).join('  '));
for (const r of rows) console.log(cols.map((c, i) => r[c]!.padEnd(width[i]!)).join('  '));
console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
