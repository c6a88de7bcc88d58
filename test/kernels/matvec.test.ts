/**
 * Dense matrix-vector product (decode) against the float64 reference of test/kernels/ref/matmul.ts.
 * Tolerance: f32 accumulation of K products in a different order than float64 is bounded by
 * about K * eps32 * sum|x_k w_k|; we allow 2 * K * 2^-24 * sum|x w| + 1e-30 per element, the
 * textbook worst case, which the GPU result must meet at every element.
 */
import { describe, expect, it } from 'vitest';
import { matvec, type MatVecConfig } from '../../src/kernels/matvec.js';
import { uploadWeight } from '../../src/kernels/matmul.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { fromF16, toF16 } from '../../src/util/f16.js';
import { getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { matmulRef } from './ref/matmul.js';

const CONFIGS: MatVecConfig[] = [
  { wg: 64, tpr: 1 },
  { wg: 256, tpr: 32 },
  { wg: 64, tpr: 4 },
];

async function check(N: number, K: number, dtype: 'f32' | 'f16', config: MatVecConfig, maxPartBytes?: number) {
  const gpu = await getGpu();
  const wHost = randn(N * K, N * 7 + K);
  const xHost = randn(K, K + 1);
  // The reference uses the weights as stored (rounded to half for f16).
  const wRef = dtype === 'f16' ? fromF16(toF16(wHost)) : wHost;
  const w = uploadWeight(gpu, wHost, [N, K], dtype, 'w', maxPartBytes);
  const x = Tensor.from(gpu, xHost, [K], 'f32', 'x');
  const y = Tensor.empty(gpu, [N], 'f32', 'y');
  record(gpu, 'matvec', (ctx) => matvec(ctx, w, x, y, config));
  const got = (await y.read()) as Float32Array;
  const ref = matmulRef(xHost, wRef, 1, N, K);
  let worst = 0;
  for (let n = 0; n < N; n++) {
    const bound = 2 * K * 2 ** -24 * ref.absSum[n]! + 1e-30;
    worst = Math.max(worst, Math.abs(got[n]! - ref.y[n]!) / bound);
  }
  expect(worst, `worst error / bound for N=${N} K=${K} ${dtype} tpr=${config.tpr}`).toBeLessThanOrEqual(1);
  for (const p of w.parts) p.buffer.destroy();
  x.destroy();
  y.destroy();
  return w.parts.length;
}

describe('matvec (dense decode product)', () => {
  for (const config of CONFIGS) {
    it.each([
      [1, 4],
      [7, 36],
      [65, 100],
      [257, 132],
      [1000, 1024],
    ])(`N=%i K=%i f32 and f16 weights, wg=${config.wg} tpr=${config.tpr}`, async (N, K) => {
      await check(N, K, 'f32', config);
      await check(N, K, 'f16', config);
    });
  }

  it('writes every row part of a split weight at its offset', async () => {
    // 2 KiB per part of 3 rows x 132 f32 = 1584 B: 34 rows become 12 parts.
    expect(await check(34, 132, 'f32', CONFIGS[0]!, 2048)).toBe(12);
    expect(await check(34, 132, 'f16', CONFIGS[1]!, 1024)).toBeGreaterThan(1);
  });

  it('refuses K not a multiple of 4', async () => {
    const gpu = await getGpu();
    const w = uploadWeight(gpu, randn(6, 1), [2, 3], 'f32', 'w');
    const x = Tensor.empty(gpu, [3], 'f32', 'x');
    const y = Tensor.empty(gpu, [2], 'f32', 'y');
    expect(() => record(gpu, 'matvec', (ctx) => matvec(ctx, w, x, y))).toThrow(/multiple of 4/);
  });
});
