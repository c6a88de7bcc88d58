/**
 * Dense matrix-vector product (decode) against the float64 reference of test/kernels/ref/matmul.ts.
 * Tolerance: f32 accumulation of K products in a different order than float64 is bounded by
 * about K * eps32 * sum|x_k w_k|; we allow 2 * K * 2^-24 * sum|x w| + 1e-30 per element, the
 * textbook worst case, which the GPU result must meet at every element.
 * Gate/up + SiLU (`matvecGateUp`): with E_g, E_u those bounds for the two sums, the product
 * silu(g~) u~ errs by at most 1.1 E_g (|u| + E_u) + |silu(g)| E_u (|silu'| <= 1.0998) plus the
 * SiLU evaluation, (9 + 2|g~|) u relative (WGSL exp: 3 + 2|x| ULP, then +, /, *; see
 * elementwise.test.ts), plus 2^-126 (results below the smallest normal may flush to zero).
 */
import { describe, expect, it } from 'vitest';
import { matvec, matvecGateUp, type MatVecConfig } from '../../src/kernels/matvec.js';
import { siluMul } from '../../src/kernels/silu-mul.js';
import { silu } from './ref/elementwise.js';
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

describe('matvec gate/up + SiLU (dense decode fusion)', () => {
  const U = 2 ** -24;

  async function checkGateUp(N: number, K: number, dtype: 'f32' | 'f16', config: MatVecConfig, swap = false) {
    const gpu = await getGpu();
    const gHost = randn(N * K, N * 11 + K);
    const uHost = randn(N * K, N * 13 + K);
    const xHost = randn(K, K + 3);
    const asStored = (v: Float32Array) => (dtype === 'f16' ? fromF16(toF16(v)) : v);
    const gate = uploadWeight(gpu, gHost, [N, K], dtype, 'gate');
    const up = uploadWeight(gpu, uHost, [N, K], dtype, 'up');
    const x = Tensor.from(gpu, xHost, [K], 'f32', 'x');
    const y = Tensor.empty(gpu, [N], 'f32', 'y');
    const [g1, u1, y1] = [Tensor.empty(gpu, [1, N], 'f32', 'g1'), Tensor.empty(gpu, [1, N], 'f32', 'u1'), Tensor.empty(gpu, [1, N], 'f32', 'y1')];
    record(gpu, 'gate_up', (ctx) => {
      matvecGateUp(ctx, gate, up, x, y, config);
      matvec(ctx, gate, x, g1.view([N]), config);
      matvec(ctx, up, x, u1.view([N]), config);
      siluMul(ctx, g1, u1, y1);
    });
    const got = (await y.read()) as Float32Array;
    // The decoder relies on this: fused and unfused decode steps are identical in f32.
    expect(Array.from(got), 'fused == matvec, matvec, silu_mul').toEqual(Array.from((await y1.read()) as Float32Array));
    const g = matmulRef(xHost, asStored(swap ? uHost : gHost), 1, N, K);
    const u = matmulRef(xHost, asStored(swap ? gHost : uHost), 1, N, K);
    let worst = 0;
    for (let n = 0; n < N; n++) {
      const eg = 2 * K * U * g.absSum[n]!;
      const eu = 2 * K * U * u.absSum[n]!;
      const gv = g.y[n]!;
      const uv = u.y[n]!;
      const tol = 1.1 * eg * (Math.abs(uv) + eu) + Math.abs(silu(gv)) * eu
        + (9 + 2 * (Math.abs(gv) + eg)) * U * (Math.abs(silu(gv)) + 1.1 * eg) * (Math.abs(uv) + eu) + 2 ** -126;
      worst = Math.max(worst, Math.abs(got[n]! - silu(gv) * uv) / tol);
    }
    for (const t of [x, y, g1, u1, y1]) t.destroy();
    for (const p of [...gate.parts, ...up.parts]) p.buffer.destroy();
    return worst;
  }

  for (const config of CONFIGS) {
    it.each([
      [1, 4],
      [7, 36],
      [65, 100],
      [257, 132],
    ])(`N=%i K=%i f32 and f16 weights, wg=${config.wg} tpr=${config.tpr}`, async (N, K) => {
      expect(await checkGateUp(N, K, 'f32', config)).toBeLessThanOrEqual(1);
      expect(await checkGateUp(N, K, 'f16', config)).toBeLessThanOrEqual(1);
    });
  }

  it('the bound catches gate and up swapped', async () => {
    expect(await checkGateUp(65, 100, 'f32', CONFIGS[0]!, true)).toBeGreaterThan(1);
  });

  it('refuses split weights', async () => {
    const gpu = await getGpu();
    const a = uploadWeight(gpu, randn(34 * 132, 1), [34, 132], 'f32', 'a', 2048);
    const b = uploadWeight(gpu, randn(34 * 132, 2), [34, 132], 'f32', 'b');
    const x = Tensor.empty(gpu, [132], 'f32', 'x');
    const y = Tensor.empty(gpu, [34], 'f32', 'y');
    expect(() => record(gpu, 'split', (ctx) => matvecGateUp(ctx, a, b, x, y))).toThrow(/one row part/);
    for (const p of [...a.parts, ...b.parts]) p.buffer.destroy();
    x.destroy();
    y.destroy();
  });
});
