/**
 * The q4 prefill tiles (`Q4MatMulVariant`: tile64, tile128 = 128 x 128 with 8 x 8 per thread)
 * against the float64 CPU reference, and bit for bit against each other (all sum every output over k in order with the
 * same multiply-add: the decoder's outputs must not change with the variant the adapter picks).
 *
 * Tolerance as in q4.test.ts: |got - ref| <= C u sqrt(K) mag (+ 2^-11 |ref| for an f16 store),
 * u = 2^-24, mag = sum_k |w_k x_k|; dequantised weights are exact in f32, so only the f32
 * rounding of the sums remains, and C = 4 leaves room over the observed worst (printed) while a
 * wrong nibble, scale, row or tile half errs by ~ mag / sqrt(K), hundreds of times more.
 * Shapes: M, N not multiples of 128, 64 or 4 (129 spills one row into a second tile row; 200
 * ends inside the second 64-row half of a wide tile; N = 7, 257 end inside a 4-column block), and
 * the Nemo prefill shape 5120 -> 4096 at a prefill chunk of 256 tokens.
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import { Gpu } from '../../src/gpu/device.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { quantizeQ4 } from '../../src/quant/q4.js';
import { fromF16, roundF16, toF16 } from '../../src/util/f16.js';
import { defaultQ4MatMulVariant, destroyQ4, q4MatMul, uploadQ4, type Q4MatMulVariant, type Q4Weight } from '../../src/kernels/q4.js';
import { checkSubgroupMatrix, checkSubgroupMatrixShape } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape, fourSubgroups, type SubgroupMatrixShape } from '../../src/kernels/subgroup-matrix.js';
import { activationDtypes, getGpu, realShapes } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { U32, q4MatMulRef, synthRowDot, uploadSynthQ4 } from './ref/q4.js';

const C = 4;
type Act = 'f32' | 'f16';

/** Worst err / (u sqrt(K) mag) over `ref` (entries `index(i)` of `got`); fails past C. */
function checkRows(got: ArrayLike<number>, ref: ArrayLike<number>, mag: ArrayLike<number>, K: number, dtype: Act, what: string, index = (i: number) => i): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[index(i)]!;
    const store = dtype === 'f16' ? 2 ** -11 * Math.abs(ref[i]!) : 0;
    const ratio = Math.max(0, Math.abs(g - ref[i]!) - store) / (U32 * Math.sqrt(K) * mag[i]!);
    if (!(ratio <= C)) expect.fail(`${what}: [${index(i)}] got ${g} want ${ref[i]} (err ${ratio.toFixed(2)} u sqrt(K) mag > ${C})`);
    worst = Math.max(worst, ratio);
  }
  return worst;
}

describe('q4 matmul variants', async () => {
  const VARIANTS: Q4MatMulVariant[] = ['tile64', 'tile128'];
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  async function run(w: Q4Weight, X: Float32Array, M: number, dtype: Act, variant: Q4MatMulVariant): Promise<Float32Array> {
    const x = Tensor.from(gpu, dtype === 'f16' ? toF16(X) : X, [M, w.cols], dtype, 'X');
    const y = Tensor.empty(gpu, [M, w.rows], dtype, 'Y');
    record(gpu, 'q4_matmul', (ctx) => q4MatMul(ctx, w, x, y, M, { variant }));
    const raw = await y.read();
    x.destroy();
    y.destroy();
    return dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
  }

  for (const dtype of dtypes) {
    it(`${dtype}: K x N x M in {32,160} x {7,130,257} x {3,129,200} against float64, every variant the same bits`, async () => {
      const worst: Record<string, number> = {};
      for (const K of [32, 160]) {
        for (const N of [7, 130, 257]) {
          const m = quantizeQ4(randn(N * K, N * 13 + K), N, K);
          const w = uploadQ4(gpu, m, `w${N}x${K}`);
          for (const M of [3, 129, 200]) {
            const X = randn(M * K, M * 5 + K);
            if (dtype === 'f16') X.forEach((v, i) => (X[i] = roundF16(v)));
            const { y, mag } = q4MatMulRef(m, X, M);
            const base = await run(w, X, M, dtype, 'tile64');
            for (const v of VARIANTS) {
              const got = v === 'tile64' ? base : await run(w, X, M, dtype, v);
              worst[v] = Math.max(worst[v] ?? 0, checkRows(got, y, mag, K, dtype, `${v} M=${M} N=${N} K=${K}`));
              expect(got, `${v} M=${M} N=${N} K=${K}`).toEqual(base);
            }
          }
          destroyQ4(w);
        }
      }
      console.log(`q4_matmul ${dtype}: worst err / (u sqrt(K) mag): ${JSON.stringify(worst)}`);
    });
  }

  it('row parts write their own columns of Y (forced split into 100-row parts)', async () => {
    const [N, K, M] = [300, 64, 140];
    const m = quantizeQ4(randn(N * K, 3), N, K);
    const w = uploadQ4(gpu, m, 'split', 100 * (K / 2));
    expect(w.parts.length).toBe(3);
    const X = randn(M * K, 4);
    const { y, mag } = q4MatMulRef(m, X, M);
    const base = await run(w, X, M, 'f32', 'tile64');
    for (const v of VARIANTS) {
      const got = v === 'tile64' ? base : await run(w, X, M, 'f32', v);
      checkRows(got, y, mag, K, 'f32', `${v} split`);
      expect(got).toEqual(base);
    }
    destroyQ4(w);
  });

  it.runIf(realShapes)('M=256 (a prefill chunk), 5120 -> 4096, sampled columns against float64, every variant the same bits', async () => {
    const [K, N, M, seed] = [5120, 4096, 256, 78];
    const w = uploadSynthQ4(gpu, N, K, seed, 'q_proj');
    const X = randn(M * K, 9);
    const got = await run(w, X, M, 'f32', 'tile64');
    for (const v of VARIANTS.slice(1)) expect(await run(w, X, M, 'f32', v), v).toEqual(got);
    destroyQ4(w);
    const cols = [0, 1, 63, 64, 127, 128, N - 1];
    for (let i = 1; cols.length < 24; i++) cols.push(Math.floor((i * (N - 1)) / 17));
    const rows = [0, 63, 64, 127, 128, 200, 255];
    const ref: number[] = [];
    const mag: number[] = [];
    const where: number[] = [];
    for (const i of rows) {
      const xi = X.subarray(i * K, (i + 1) * K);
      for (const n of cols) {
        const r = synthRowDot(K, seed, n, xi);
        ref.push(r.y);
        mag.push(r.mag);
        where.push(i * N + n);
      }
    }
    const worst = checkRows(got, ref, mag, K, 'f32', 'M=256 5120->4096', (j) => where[j]!);
    console.log(`q4_matmul 256x5120->4096: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
  });
});

/**
 * The subgroup-matrix variant, wherever the adapter has `chromium-experimental-subgroup-matrix`
 * (lavapipe from Mesa 26 has it with 8 x 8 fragments: `.ci/subgroup-matrix`; SwiftShader and
 * bookworm's lavapipe 25.0 do not, and these cases say so and skip, unless
 * PIXTRAL_REQUIRE_SUBGROUP_MATRIX=1, which makes a missing feature a failure).
 * Tolerance against float64: the kernel rounds each dequantised weight and each f32 activation to
 * f16 once (2^-11 relative each; f16 activations are exact) and an f16 result is stored rounded
 * (2^-11 of |ref|), so |got - ref| <= 2^-11 (store |ref| + (1 + x rounded) mag), plus the f32
 * sums' C u sqrt(K) mag as above; a wrong fragment errs by ~ mag / sqrt(K), 10 times that or more.
 */
describe('q4 matmul on subgroup matrices', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();
  const required = typeof process !== 'undefined' && process.env?.PIXTRAL_REQUIRE_SUBGROUP_MATRIX === '1';
  // onCpu: the default on lavapipe too, where CPU adapters otherwise keep tile64.
  const verdict = await checkSubgroupMatrix(gpu, { onCpu: true });
  const shape = verdict.shape;
  if (!shape) console.log(`q4_matmul subgroupMatrix: not used on this adapter: ${verdict.reason}`);

  it.runIf(required || gpu.features.subgroupMatrix)('passes its on-device check and becomes the default', () => {
    expect(verdict.reason).toBeUndefined();
    expect(defaultQ4MatMulVariant(gpu)).toBe('subgroupMatrix');
  });

  it.runIf(!gpu.features.subgroupMatrix && !required)('without the feature the tiled kernel stays the default, with the reason recorded', () => {
    expect(verdict.reason).toMatch(/subgroup|shader-f16/);
    expect(defaultQ4MatMulVariant(gpu)).toBe('tile64');
  });

  // The checked shape, and 4 subgroups per workgroup where the device has `subgroup_id`.
  const four = shape && fourSubgroups(gpu, shape);
  const shapes = [shape, four].filter((x): x is SubgroupMatrixShape => !!x);
  if (shape && !four) console.log('q4_matmul subgroupMatrix: no 4-subgroup workgroups here (no subgroup_id)');

  for (const dtype of dtypes) for (const s of shapes) {
    it(`${dtype}, ${describeShape(s)}: K x N x M in {32,160} x {7,130,257} x {3,129,200} against float64 (partial tiles, split row parts)`, async () => {
      let worst = 0;
      for (const K of [32, 160]) {
        for (const N of [7, 130, 257]) {
          const m = quantizeQ4(randn(N * K, N * 13 + K), N, K);
          // 100-row parts: each part writes its own columns of Y.
          const w = uploadQ4(gpu, m, `w${N}x${K}`, N > 100 ? 100 * (K / 2) : undefined);
          for (const M of [3, 129, 200]) {
            const X = randn(M * K, M * 5 + K);
            if (dtype === 'f16') X.forEach((v, i) => (X[i] = roundF16(v)));
            const { y: ref, mag } = q4MatMulRef(m, X, M);
            const x = Tensor.from(gpu, dtype === 'f16' ? toF16(X) : X, [M, K], dtype, 'X');
            const y = Tensor.empty(gpu, [M, N], dtype, 'Y');
            record(gpu, 'q4_matmul', (ctx) => q4MatMul(ctx, w, x, y, M, { variant: 'subgroupMatrix', shape: s }));
            const raw = await y.read();
            const got = dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
            x.destroy();
            y.destroy();
            for (let i = 0; i < ref.length; i++) {
              const bound = 2 ** -11 * ((dtype === 'f16' ? Math.abs(ref[i]!) : 0) + (dtype === 'f16' ? 1 : 2) * mag[i]!);
              const err = Math.abs(got[i]! - ref[i]!);
              const ratio = Math.max(0, err - bound) / (U32 * Math.sqrt(K) * mag[i]!);
              if (!(ratio <= C)) expect.fail(`M=${M} N=${N} K=${K} [${i}]: got ${got[i]} want ${ref[i]} (mag ${mag[i]})`);
              worst = Math.max(worst, err / bound);
            }
          }
          destroyQ4(w);
        }
      }
      console.log(`q4_matmul subgroupMatrix ${dtype} ${describeShape(s)}: worst |err| / bound: ${worst.toFixed(3)}`);
    });
  }

  it.runIf(!!shape && gpu.isSoftware)('on a CPU adapter a passing check leaves tile64 the default (emulated matrices are slower)', async () => {
    const other = await Gpu.create();
    try {
      const v = await checkSubgroupMatrix(other);
      expect(v.shape).toEqual(shape);
      expect(v.isDefault).toBe(false);
      expect(defaultQ4MatMulVariant(other)).toBe('tile64');
    } finally {
      other.destroy();
    }
  });

  it.runIf(!!four)('the 4-subgroup shape passes the same on-device check and gives the 1-subgroup bits (the same sums per fragment)', async () => {
    expect(await checkSubgroupMatrixShape(gpu, four!)).toBeNull();
    const [M, N, K] = [200, 257, 160];
    const w = uploadQ4(gpu, quantizeQ4(randn(N * K, 41), N, K), 'w');
    const X = randn(M * K, 42);
    const out: Float32Array[] = [];
    for (const s of [shape!, four!]) {
      const x = Tensor.from(gpu, X, [M, K], 'f32', 'X');
      const y = Tensor.empty(gpu, [M, N], 'f32', 'Y');
      record(gpu, 'q4_matmul', (ctx) => q4MatMul(ctx, w, x, y, M, { variant: 'subgroupMatrix', shape: s }));
      out.push((await y.read()) as Float32Array);
      x.destroy();
      y.destroy();
    }
    destroyQ4(w);
    expect(out[1]).toEqual(out[0]);
  });

  it.runIf(!!shape)('a fragment shape the adapter does not list is refused by its check, with the reason', async () => {
    const other = shape!.frag === 8 ? 16 : 8;
    const failure = await checkSubgroupMatrixShape(gpu, { ...shape!, frag: other });
    expect(failure).toMatch(/KernelError/);
    console.log(`q4_matmul subgroupMatrix ${other}x${other} refused: ${failure!.split('\n')[0]}`);
    // The device still works afterwards.
    expect(await checkSubgroupMatrixShape(gpu, shape!)).toBeNull();
  });
});
