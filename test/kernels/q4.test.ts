/**
 * q4 kernels against float64 CPU references: the decode matrix-vector product in every work
 * split (one thread per rows, shared-memory reduction, subgroup reduction), awkward sizes, forced
 * row splits with an output offset, all five Nemo decode shapes, and the prefill matrix product.
 *
 * Tolerance (every check): |got - ref| <= C * u * sqrt(K) * mag (+ |ref| * 2^-11 for f16 output),
 * u = 2^-24 the f32 unit roundoff, mag = sum_k |w_k x_k| (`q4MatVecWithMag` / `q4MatMulRef`).
 * Dequantised weights are exact in f32 ((q - 8) times an f16 scale; both kernels form them
 * exactly), so the only error is f32 rounding of the sums: each addition errs by <= u times a
 * partial sum <= mag (the matvec's `intcvt` split sums q x and 8 x apart within a group of 32,
 * partial sums a few times larger, still well inside C: its worst is printed too), and over K
 * roughly independent roundings the error grows like sqrt(K) u mag
 * (the worst case K u mag is never approached). C = 4 leaves room over the observed maxima (the
 * tests print the worst err / (u sqrt(K) mag), < 1) while a wrong nibble, scale or row gives
 * errors near |y| ~ mag / sqrt(K), hundreds of times the tolerance (asserted below).
 * f16 activations: x is rounded to f16 before the reference, and the f16 store of y adds at most
 * half an f16 ulp, 2^-11 |y|.
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { quantizeQ4 } from '../../src/quant/q4.js';
import { roundF16, toF16 } from '../../src/util/f16.js';
import {
  canUseSubgroups,
  defaultQ4MatVecConfig,
  destroyQ4,
  q4MatMul,
  q4MatVec,
  q4MatVecConfigFor,
  Q4_MATVEC_TARGET_WORKGROUPS,
  uploadQ4,
  type Q4MatVecConfig,
  type Q4Weight,
} from '../../src/kernels/q4.js';
import { activationDtypes, getGpu, realShapes } from '../helpers/gpu.js';
import { readF32, upload } from '../helpers/act.js';
import { randn } from '../helpers/random.js';
import { U32, q4MatMulRef, q4MatVecWithMag, synthQ4, synthRowDot, uploadSynthQ4 } from './ref/q4.js';

const C = 4;
type Act = 'f32' | 'f16';

/** Worst err / (u sqrt(K) mag) over the checked entries; fails past C (and past the f16 store). */
function checkRows(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  mag: ArrayLike<number>,
  K: number,
  dtype: Act,
  what: string,
  index: (i: number) => number = (i) => i,
): number {
  let worst = 0;
  let bad = -1;
  for (let i = 0; i < ref.length; i++) {
    const g = got[index(i)]!;
    const unit = U32 * Math.sqrt(K) * mag[i]!;
    const store = dtype === 'f16' ? 2 ** -11 * Math.abs(ref[i]!) : 0;
    const err = Math.abs(g - ref[i]!);
    const ratio = Math.max(0, err - store) / unit;
    if (!(ratio <= C) && bad < 0) bad = i;
    if (!(ratio <= worst)) worst = Number.isNaN(ratio) ? Infinity : ratio;
  }
  if (bad >= 0) {
    expect.fail(`${what}: [${index(bad)}] got ${got[index(bad)]} want ${ref[bad]} (err ${worst.toFixed(2)} u sqrt(K) mag > ${C})`);
  }
  return worst;
}

/** The matvec work splits to test on this adapter (default first). */
async function matvecConfigs(gpu: Gpu): Promise<(Q4MatVecConfig & { name: string })[]> {
  const out: (Q4MatVecConfig & { name: string })[] = [
    { name: 'rows per thread, intcvt', wg: 64, tpr: 1, subgroups: false, pairs: false, intcvt: true },
    { name: 'rows per thread, pairs', wg: 32, tpr: 1, subgroups: false, pairs: true, intcvt: false },
    { name: 'shared tpr=4, pairs, intcvt', wg: 64, tpr: 4, subgroups: false, pairs: true, intcvt: true },
    { name: 'shared tpr=64', wg: 256, tpr: 64, subgroups: false, pairs: false, intcvt: false },
  ];
  // The GPU default for few rows (q4MatVecConfigFor): 32 threads per row block, 8 rows per workgroup.
  out.push({ name: 'gpu split, 8 rows per workgroup', wg: 64, tpr: 32, subgroups: canUseSubgroups(gpu, 32), pairs: true, intcvt: false });
  for (const tpr of [16, 64]) {
    if (canUseSubgroups(gpu, tpr)) out.push({ name: `subgroups tpr=${tpr}, pairs`, wg: 256, tpr, subgroups: true, pairs: true, intcvt: false });
  }
  return out;
}

async function runMatVec(gpu: Gpu, w: Q4Weight, xv: Float32Array, dtype: Act, config?: Q4MatVecConfig, yOffset = 0, yLen = w.rows) {
  const x = upload(gpu, xv, dtype, 'x');
  const sentinel = new Float32Array(yLen).fill(12345);
  const y = upload(gpu, sentinel, dtype, 'y');
  record(gpu, 'q4_matvec', (ctx) => q4MatVec(ctx, w, x, y, { yOffset, config }));
  const out = await readF32(y);
  x.destroy();
  y.destroy();
  return out;
}

describe('q4 matvec', async () => {
  const gpu = await getGpu();
  const configs = await matvecConfigs(gpu);
  const dtypes = await activationDtypes();

  it('covers the reduction paths this adapter offers', () => {
    expect(configs.map((c) => c.name)).toContain('shared tpr=64');
    expect(configs.map((c) => c.name)).toContain('shared tpr=4, pairs, intcvt');
    // SwiftShader and every GPU with subgroups report their sizes: the subgroup path must run.
    if (gpu.features.subgroups) expect(configs.some((c) => c.subgroups)).toBe(true);
  });

  it('spreads the Nemo decode shapes over enough workgroups on GPUs, keeps the CPU split on software', () => {
    // Rows of each Nemo decode dispatch: q/k/v fused, o- and down-proj, gate/up (per weight), lm_head.
    for (const rows of [6144, 5120, 14336, 131072]) {
      const c = q4MatVecConfigFor(gpu, rows);
      if (gpu.isSoftware) {
        expect(c).toEqual(defaultQ4MatVecConfig(gpu));
        continue;
      }
      expect(c.tpr).toBe(defaultQ4MatVecConfig(gpu).tpr);
      expect(Math.ceil(rows / ((4 * c.wg) / c.tpr)), `${rows} rows: workgroups`).toBeGreaterThanOrEqual(Q4_MATVEC_TARGET_WORKGROUPS);
    }
  });

  for (const config of configs) {
    for (const dtype of dtypes) {
      // K: 1, 3 and 5 groups (odd group counts exercise the odd f16 of a scale pair); N: not
      // multiples of the 4-row block nor of the workgroup's rows (4 * wg / tpr).
      it(`${config.name}, ${dtype}: K x N in {32,96,160} x {1,7,33,257}, quantised Gaussian weights`, async () => {
        let worst = 0;
        for (const K of [32, 96, 160]) {
          for (const N of [1, 7, 33, 257]) {
            const m = quantizeQ4(randn(N * K, N * 1000 + K), N, K);
            const xv = randn(K, K + 7);
            if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
            const w = uploadQ4(gpu, m, `w${N}x${K}`);
            const got = await runMatVec(gpu, w, xv, dtype, config);
            destroyQ4(w);
            const { y, mag } = q4MatVecWithMag(m, xv);
            worst = Math.max(worst, checkRows(got, y, mag, K, dtype, `N=${N} K=${K}`));
          }
        }
        console.log(`q4_matvec ${config.name} ${dtype}: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
      });
    }
  }

  it('dispatches once per row part and writes at the output offset (forced split)', async () => {
    const N = 257;
    const K = 96;
    const m = synthQ4(N, K, 3);
    // 40 rows of 48 bytes per part: 7 parts, the last of 17 rows (not a multiple of 4).
    const w = uploadQ4(gpu, m, 'split', 40 * (K / 2));
    expect(w.parts.map((p) => p.rows)).toEqual([40, 40, 40, 40, 40, 40, 17]);
    const xv = randn(K, 5);
    const { y, mag } = q4MatVecWithMag(m, xv);
    for (const config of configs) {
      const got = await runMatVec(gpu, w, xv, 'f32', config, 3, N + 5);
      expect([got[0], got[1], got[2], got[N + 3], got[N + 4]]).toEqual([12345, 12345, 12345, 12345, 12345]);
      checkRows(got, y, mag, K, 'f32', `split ${config.name}`, (i) => i + 3);
    }
    destroyQ4(w);
  });

  it('the tolerance catches a wrong nibble order', () => {
    // Reference computed with the high/low nibbles of each byte swapped: must fail the check.
    const N = 33;
    const K = 160;
    const m = synthQ4(N, K, 9);
    const xv = randn(K, 1);
    const { y, mag } = q4MatVecWithMag(m, xv);
    const swapped = { ...m, qweight: m.qweight.map((v) => (((v & 0x0f0f0f0f) << 4) | ((v >>> 4) & 0x0f0f0f0f)) >>> 0) };
    const wrong = q4MatVecWithMag(swapped, xv).y;
    expect(() => checkRows(wrong, y, mag, K, 'f32', 'swapped')).toThrow();
  });

  // The five decode shapes of Mistral Nemo (K -> N): q, k/v, gate/up, down, lm_head.
  const nemo: [number, number][] = [
    [5120, 4096],
    [5120, 1024],
    [5120, 14336],
    [14336, 5120],
    [5120, 131072],
  ];
  for (const [K, N] of nemo) {
    it.runIf(realShapes)(`Nemo ${K} -> ${N}: synthetic weights, sampled rows`, async () => {
      const seed = K + N;
      // lm_head as a laptop holds it: 128 MiB bindings, so 3 row parts of a 320 MiB qweight.
      const w = uploadSynthQ4(gpu, N, K, seed, `nemo${K}x${N}`, N === 131072 ? 128 * 2 ** 20 : undefined);
      expect(w.parts.length).toBe(N === 131072 ? 3 : 1);
      const xv = randn(K, seed);
      const x = upload(gpu, xv, 'f32', 'x');
      const y = Tensor.empty(gpu, [N], 'f32', 'y');
      record(gpu, 'q4_matvec', (ctx) => q4MatVec(ctx, w, x, y));
      const got = (await y.read()) as Float32Array;
      // 64 rows: both ends, the last workgroup's tail, and a stride across the rest.
      const rows = [0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1];
      for (let i = 1; rows.length < 64; i++) rows.push(Math.floor((i * (N - 1)) / 57));
      const ref = rows.map((r) => synthRowDot(K, seed, r, xv));
      const worst = checkRows(got, ref.map((r) => r.y), ref.map((r) => r.mag), K, 'f32', `${K}->${N}`, (i) => rows[i]!);
      console.log(`q4_matvec ${K}->${N}: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
      destroyQ4(w);
      x.destroy();
      y.destroy();
    });
  }
});

describe('q4 matmul', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  async function runMatMul(w: Q4Weight, X: Float32Array, M: number, dtype: Act): Promise<Float32Array> {
    const x = Tensor.from(gpu, dtype === 'f16' ? toF16(X) : X, [M, w.cols], dtype, 'X');
    const y = Tensor.empty(gpu, [M, w.rows], dtype, 'Y');
    record(gpu, 'q4_matmul', (ctx) => q4MatMul(ctx, w, x, y, M));
    const out = await readF32(y);
    x.destroy();
    y.destroy();
    return out;
  }

  for (const dtype of dtypes) {
    // M, N: not multiples of the 64 x 64 tile (65 spills one row into a second tile row).
    it(`${dtype}: K x N x M in {32,96,160} x {1,7,33,257} x {1,3,17,65}`, async () => {
      let worst = 0;
      for (const K of [32, 96, 160]) {
        for (const N of [1, 7, 33, 257]) {
          const m = quantizeQ4(randn(N * K, N * 31 + K), N, K);
          const w = uploadQ4(gpu, m, `w${N}x${K}`);
          for (const M of [1, 3, 17, 65]) {
            const X = randn(M * K, M * 7 + K);
            if (dtype === 'f16') X.forEach((v, i) => (X[i] = roundF16(v)));
            const got = await runMatMul(w, X, M, dtype);
            const { y, mag } = q4MatMulRef(m, X, M);
            worst = Math.max(worst, checkRows(got, y, mag, K, dtype, `M=${M} N=${N} K=${K}`));
          }
          destroyQ4(w);
        }
      }
      console.log(`q4_matmul ${dtype}: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
    });
  }

  it('row parts write their own columns of Y (forced split)', async () => {
    const N = 150;
    const K = 64;
    const M = 70;
    const m = synthQ4(N, K, 4);
    const w = uploadQ4(gpu, m, 'split', 48 * (K / 2)); // 48-row parts: not tile multiples
    expect(w.parts.length).toBe(4);
    const X = randn(M * K, 2);
    const got = await runMatMul(w, X, M, 'f32');
    const { y, mag } = q4MatMulRef(m, X, M);
    checkRows(got, y, mag, K, 'f32', 'split');
    destroyQ4(w);
  });

  it.runIf(realShapes)('M=64, 5120 -> 4096 (prefill of a q projection), sampled columns', async () => {
    const K = 5120;
    const N = 4096;
    const M = 64;
    const seed = 77;
    const w = uploadSynthQ4(gpu, N, K, seed, 'q_proj');
    const X = randn(M * K, 8);
    const got = await runMatMul(w, X, M, 'f32');
    destroyQ4(w);
    const cols = [0, 1, 63, 64, 65, N - 1];
    for (let i = 1; cols.length < 40; i++) cols.push(Math.floor((i * (N - 1)) / 35));
    const ref: number[] = [];
    const mag: number[] = [];
    const where: number[] = [];
    for (let i = 0; i < M; i++) {
      const xi = X.subarray(i * K, (i + 1) * K);
      for (const n of cols) {
        const r = synthRowDot(K, seed, n, xi);
        ref.push(r.y);
        mag.push(r.mag);
        where.push(i * N + n);
      }
    }
    const worst = checkRows(got, ref, mag, K, 'f32', 'M=64 5120->4096', (j) => where[j]!);
    console.log(`q4_matmul 64x5120->4096: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
  });
});
