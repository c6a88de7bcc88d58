/**
 * matmul (Y = X @ W^T + b), im2col and the patch-embedding conv against float64 CPU references.
 *
 * Tolerance (every matmul check): |got - ref| <= (K + 2) * u * S + r_out * |ref|, with
 * S = sum_k |x_k w_k| + |b| from the reference, u = 2^-24. (K + 2) u S is the classical worst-case
 * bound for an f32 dot product of K terms plus the bias add (any summation order), so it holds for
 * every element on any adapter, yet a wrong index, a dropped K tile or a missing bias moves the
 * result by O(|x_k w_k|) >> u S. Inputs are exactly representable on the GPU (f16 weights are
 * compared against a reference computed from the f16-rounded weights), so the reference adds no
 * error of its own. r_out = 2^-11 for f16 activations (one rounding of the output to half; the
 * reference also uses f16-rounded x), 0 for f32.
 */
import { describe, expect, it } from 'vitest';
import { asMatWeight, destroyWeight, matmul, rowAlignment, uploadWeight, type MatWeight } from '../../src/kernels/matmul.js';
import { im2col, im2colShape } from '../../src/kernels/im2col.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { KernelError } from '../../src/errors.js';
import { fromF16, roundF16, toF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu, realShapes } from '../helpers/gpu.js';
import { randn, randu } from '../helpers/random.js';
import { im2colRef, matmulRef, patchConvRef, type DotRef } from './ref/matmul.js';
import type { Gpu } from '../../src/gpu/device.js';
import { checkSubgroupMatrix } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape, fourSubgroups, type SubgroupMatrixShape } from '../../src/kernels/subgroup-matrix.js';

const U = 2 ** -24;

type Act = 'f32' | 'f16';

/** Values an `act` buffer holds for host data `v`. */
function asAct(v: Float32Array, act: Act): Float32Array {
  return act === 'f16' ? Float32Array.from(v, roundF16) : v;
}

function actTensor(gpu: Gpu, v: Float32Array, shape: number[], act: Act, label: string): Tensor {
  return Tensor.from(gpu, act === 'f16' ? toF16(v) : v, shape, act, label);
}

async function readAct(t: Tensor): Promise<Float32Array> {
  const raw = await t.read();
  return t.dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
}

/** Checks `got` rows (row-major [rows, N], same order as the reference) against the bound above. */
function expectDotClose(got: ArrayLike<number>, ref: DotRef, K: number, act: Act, what: string): void {
  expect(got.length).toBe(ref.y.length);
  const rOut = act === 'f16' ? 2 ** -11 : 0;
  // An f16 output below 2^-14 is subnormal: its rounding error is absolute, up to half the
  // subnormal spacing 2^-24 (the relative term above does not cover it).
  const aOut = act === 'f16' ? 2 ** -25 : 0;
  let failures = 0;
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - ref.y[i]!);
    const tol = (K + 2) * U * ref.absSum[i]! + rOut * Math.abs(ref.y[i]!) + aOut;
    const ratio = err / tol;
    if (!(err <= tol)) failures++;
    if (!(ratio <= worstRatio)) {
      worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
      worst = i;
    }
  }
  if (failures) {
    expect.fail(`${what}: ${failures}/${got.length} outside the f32 dot bound; worst [${worst}] got ${got[worst]} want ${ref.y[worst]} (err/tol ${worstRatio.toExponential(2)})`);
  }
}

describe('matmul', async () => {
  const acts = await activationDtypes();

  // Odd sizes, none a multiple of the 64 x 64 tile (K = 768 is a multiple of the K step 16 and
  // takes the vectorised K % 4 == 0 path; 3 and 17 the scalar one). The full product for the
  // two main variants; the mixed ones each on one K path, as every variant is one more pipeline
  // to compile (seconds each on SwiftShader). f16 weights without bias on the vec4 path are also
  // covered by the patch embedding below, f32 bias on f16 weights by the split and ViT tests.
  const full = { Ms: [1, 3, 65, 127], Ns: [1, 17, 130], Ks: [3, 17, 768] };
  for (const act of acts)
    for (const [wdt, withBias, { Ms, Ns, Ks }] of [
      ['f32', false, full],
      ['f16', true, full],
      ['f32', true, { Ms: [1, 65], Ns: [17, 130], Ks: [768] }],
      ['f16', false, { Ms: [1, 65], Ns: [17, 130], Ks: [17] }],
    ] as const) {
      it(`odd sizes M ${Ms} x N ${Ns} x K ${Ks}, act ${act}, weight ${wdt}, bias ${withBias ? wdt : 'none'}`, async () => {
        const gpu = await getGpu();
        let seed = 100;
        for (const K of Ks)
          for (const N of Ns) {
            const wv = randn(N * K, seed++, 1 / Math.sqrt(K));
            const wRounded = wdt === 'f16' ? Float32Array.from(wv, roundF16) : wv;
            const w = uploadWeight(gpu, wv, [N, K], wdt, 'w');
            const bv = randn(N, seed++);
            const bRounded = wdt === 'f16' ? Float32Array.from(bv, roundF16) : bv;
            const bias = withBias ? Tensor.from(gpu, wdt === 'f16' ? toF16(bv) : bv, [N], wdt, 'b') : undefined;
            for (const M of Ms) {
              const xv = asAct(randn(M * K, seed++), act);
              const x = actTensor(gpu, xv, [M, K], act, 'x');
              const y = Tensor.empty(gpu, [M, N], act, 'y');
              record(gpu, 'matmul', (ctx) => matmul(ctx, x, w, y, { bias }));
              const ref = matmulRef(xv, wRounded, M, N, K, withBias ? bRounded : undefined);
              expectDotClose(await readAct(y), ref, K, act, `M=${M} N=${N} K=${K}`);
              x.destroy();
              y.destroy();
            }
            bias?.destroy();
            destroyWeight(w);
          }
      });
    }

  it('row-split weight (3 parts, f16, odd K) writes each part to its columns, bias offset', async () => {
    const gpu = await getGpu();
    const [M, N, K] = [70, 130, 17];
    const wv = randn(N * K, 7, 0.25);
    // 50 rows of 17 halves per part: parts of 50, 50, 30 rows, each an odd number of bytes/2.
    const w = uploadWeight(gpu, wv, [N, K], 'f16', 'w-split', 50 * K * 2);
    expect(w.parts.map((p) => p.rows)).toEqual([50, 50, 30]);
    const bv = randn(N, 8);
    const bias = Tensor.from(gpu, bv, [N], 'f32', 'b');
    const xv = randn(M * K, 9);
    const x = Tensor.from(gpu, xv, [M, K], 'f32', 'x');
    const y = Tensor.empty(gpu, [M, N], 'f32', 'y');
    record(gpu, 'matmul', (ctx) => matmul(ctx, x, w, y, { bias }));
    const ref = matmulRef(xv, Float32Array.from(wv, roundF16), M, N, K, bv);
    expectDotClose(await readAct(y), ref, K, 'f32', 'split');
    for (const t of [x, y, bias]) t.destroy();
    destroyWeight(w);
  });

  it('a plain [N, K] Tensor is accepted as the weight; M option uses a row prefix', async () => {
    const gpu = await getGpu();
    const [M, N, K] = [5, 9, 33];
    const wv = randn(N * K, 11);
    const wt = Tensor.from(gpu, wv, [N, K], 'f32', 'w');
    const xv = randn(8 * K, 12);
    const x = Tensor.from(gpu, xv, [8, K], 'f32', 'x');
    const y = Tensor.from(gpu, new Float32Array(8 * N).fill(-7), [8, N], 'f32', 'y');
    record(gpu, 'matmul', (ctx) => matmul(ctx, x, wt, y, { M }));
    const got = await readAct(y);
    expectDotClose(got.subarray(0, M * N), matmulRef(xv, wv, M, N, K), K, 'f32', 'prefix');
    // Rows past M untouched.
    expect(Array.from(got.subarray(M * N)).every((v) => v === -7)).toBe(true);
    for (const t of [x, y, wt]) t.destroy();
  });

  it('row windows: xRowOffset / yRowOffset read and write rows at an offset, bit-identical to one pass; misaligned offsets refused', async () => {
    const gpu = await getGpu();
    // K = 64 f32: a row is 256 bytes, so any row offset is a valid binding offset; N = 130 is
    // 520 bytes a row, so y row offsets must be multiples of rowAlignment (32 rows at 256 B).
    const [R, N, K] = [200, 130, 64];
    const step = rowAlignment(gpu, N);
    expect((step * N * 4) % gpu.limits.minStorageBufferOffsetAlignment).toBe(0);
    const wv = randn(N * K, 31, 1 / Math.sqrt(K));
    const w = uploadWeight(gpu, wv, [N, K], 'f16', 'w');
    const bv = randn(N, 32);
    const bias = Tensor.from(gpu, bv, [N], 'f32', 'b');
    const xv = randn(R * K, 33);
    const x = Tensor.from(gpu, xv, [R, K], 'f32', 'x');
    const whole = Tensor.empty(gpu, [R, N], 'f32', 'whole');
    const win = Tensor.from(gpu, new Float32Array(R * N).fill(-7), [R, N], 'f32', 'windows');
    // Rows [r0, r0 + n) of x -> rows [r0, r0 + n) of y, in windows of `step` rows (last one short),
    // and one window read at an offset into row 0 of a small y.
    record(gpu, 'matmul', (ctx) => {
      matmul(ctx, x, w, whole, { bias });
      for (let r0 = 0; r0 < R; r0 += step) matmul(ctx, x, w, win, { bias, M: Math.min(step, R - r0), xRowOffset: r0, yRowOffset: r0 });
    });
    const small = Tensor.empty(gpu, [5, N], 'f32', 'small');
    record(gpu, 'matmul', (ctx) => matmul(ctx, x, w, small, { bias, M: 5, xRowOffset: 77 }));
    const ref = matmulRef(xv, Float32Array.from(wv, roundF16), R, N, K, bv);
    const got = await readAct(win);
    expectDotClose(got, ref, K, 'f32', 'windows');
    // The same sums in the same order as one pass over every row: bit-identical.
    expect(got).toEqual(await readAct(whole));
    expectDotClose(await readAct(small), { y: ref.y.subarray(77 * N, 82 * N), absSum: ref.absSum.subarray(77 * N, 82 * N) }, K, 'f32', 'x offset');
    const bad = (o: { xRowOffset?: number; yRowOffset?: number; M?: number }) => () => record(gpu, 'bad', (ctx) => matmul(ctx, x, w, win, { M: 1, ...o }));
    expect(bad({ yRowOffset: 1 })).toThrow(/minStorageBufferOffsetAlignment/);
    expect(bad({ xRowOffset: R - 1, M: 2 })).toThrow(KernelError);
    for (const t of [x, whole, win, small, bias]) t.destroy();
    destroyWeight(w);
  });

  it('rejects bad shapes and a weight part over the binding limit with a KernelError', async () => {
    const gpu = await getGpu();
    const K = 1024;
    const x = Tensor.empty(gpu, [2, K], 'f32', 'x');
    const small = Tensor.empty(gpu, [4, K], 'f32', 'w');
    const yBad = Tensor.empty(gpu, [2, 5], 'f32', 'y');
    expect(() => record(gpu, 'bad', (ctx) => matmul(ctx, x, small, yBad))).toThrow(KernelError);
    // A weight claiming more rows than one binding may hold (never dispatched).
    const rows = Math.ceil((gpu.limits.maxStorageBufferBindingSize + 1) / (K * 4));
    const huge: MatWeight = { shape: [rows, K], dtype: 'f32', parts: [{ buffer: small.buffer, rowStart: 0, rows }], label: 'huge' };
    const y = Tensor.empty(gpu, [1, rows], 'f32', 'y');
    expect(() => record(gpu, 'huge', (ctx) => matmul(ctx, x, huge, y, { M: 1 }))).toThrow(/binding limit/);
    const f16x = Tensor.empty(gpu, [2, K], 'f16', 'x16');
    const f32y = Tensor.empty(gpu, [2, 4], 'f32', 'y32');
    expect(() => record(gpu, 'mixed', (ctx) => matmul(ctx, f16x, asMatWeight(small), f32y))).toThrow(KernelError);
    for (const t of [x, small, yBad, y, f16x, f32y]) t.destroy();
  });

  // Real Pixtral ViT shapes, f16 weights as converted; 16 sampled rows (tile edges and random)
  // against the CPU, all N columns, to keep the CPU reference time bounded. 4096 x 1024 x 4096
  // is 34 GFLOP, over half a minute on SwiftShader's 2 CPU cores: there the 1024 -> 4096 case
  // runs 256 patches (N = 4096 and M = 4096 are each still covered at full size); on hardware
  // adapters both run all 4096 patches.
  for (const [K, N] of [
    [1024, 1024],
    [1024, 4096],
  ] as const) {
    it.runIf(realShapes)(`ViT shape patches x ${K} -> ${N} (4096 patches; 256 on SwiftShader for N 4096), f16 weights, f32 bias`, async () => {
      const gpu = await getGpu();
      const cpuAdapter = gpu.adapterInfo.architecture === 'swiftshader';
      const M = cpuAdapter && N > 1024 ? 256 : 4096;
      const wBits = toF16(randn(N * K, 21, 1 / Math.sqrt(K))); // [N, K] f16, as converted
      const w = uploadWeight(gpu, wBits, [N, K], 'f16', 'w');
      const bv = randn(N, 22, 0.1);
      const bias = Tensor.from(gpu, bv, [N], 'f32', 'b');
      const xv = randn(M * K, 23);
      const x = Tensor.from(gpu, xv, [M, K], 'f32', 'x');
      const y = Tensor.empty(gpu, [M, N], 'f32', 'y');
      record(gpu, 'matmul', (ctx) => matmul(ctx, x, w, y, { bias }));
      const got = await readAct(y);
      const rnd = randu(10, 24, 0, M);
      const rows = [0, 63, 64, M / 2 - 1, M - 64, M - 1, ...Array.from(rnd, Math.floor)];
      const ref = matmulRef(xv, fromF16(wBits), M, N, K, bv, rows);
      const sampled = new Float32Array(rows.length * N);
      rows.forEach((m, r) => sampled.set(got.subarray(m * N, (m + 1) * N), r * N));
      expectDotClose(sampled, ref, K, 'f32', `ViT ${K}->${N}`);
      for (const t of [x, y, bias]) t.destroy();
      destroyWeight(w);
    });
  }
});

describe('im2col + patch embedding', async () => {
  const acts = await activationDtypes();
  // Patch 16 (Pixtral) and 14 (mistral3); non-square grids.
  for (const act of acts)
    for (const [p, H, W] of [
      [16, 48, 80],
      [14, 42, 28],
    ] as const) {
      it(`patch ${p}, image 3 x ${H} x ${W}, ${act}`, async () => {
        const gpu = await getGpu();
        const C = 3;
        const O = 40; // hidden size (1024 for real: only the matmul's N)
        const imgv = asAct(randn(C * H * W, p), act);
        const img = actTensor(gpu, imgv, [C, H, W], act, 'img');
        const [rows, len] = im2colShape([C, H, W], p);
        const patches = Tensor.empty(gpu, [rows, len], act, 'patches');
        const wv = randn(O * C * p * p, p + 1, 0.05);
        // The conv weight [O, C, p, p] viewed as [O, C * p * p]: no reordering needed.
        const w = uploadWeight(gpu, wv, [O, C * p * p], 'f16', 'patch_conv');
        const y = Tensor.empty(gpu, [rows, O], act, 'embeds');
        record(gpu, 'patch-embed', (ctx) => {
          im2col(ctx, img, patches, p);
          matmul(ctx, patches, w, y);
        });
        // im2col is a pure copy: exact.
        expect(Array.from(await readAct(patches))).toEqual(Array.from(im2colRef(imgv, C, H, W, p)));
        const ref = patchConvRef(imgv, Float32Array.from(wv, roundF16), C, H, W, O, p);
        expectDotClose(await readAct(y), ref, len, act, `conv p=${p}`);
        for (const t of [img, patches, y]) t.destroy();
        destroyWeight(w);
      });
    }

  it('rejects an image that is not a multiple of the patch', async () => {
    const gpu = await getGpu();
    const img = Tensor.empty(gpu, [3, 30, 32], 'f32', 'img');
    const out = Tensor.empty(gpu, [4, 768], 'f32', 'out');
    expect(() => record(gpu, 'bad', (ctx) => im2col(ctx, img, out, 16))).toThrow(KernelError);
    img.destroy();
    out.destroy();
  });
});

/**
 * Products without a bias on subgroup matrices (`variant: 'subgroupMatrix'`: the vision encoder's
 * linears on GPUs whose check passed), wherever the adapter has them (lavapipe from Mesa 26:
 * `.ci/subgroup-matrix`; elsewhere skipped, saying so). Last in the file: on a GPU the check makes
 * the variant the default for this file's device. Tolerance: the bound above plus one f16
 * rounding of each operand that is not f16 already (f32 activations, f32 weights: 2^-11 |x_k w_k|
 * each, summed into S) and an f16 operand's subnormal spacing (2^-25 sum_k |x_k| for weights
 * ~ 1 / sqrt(K) below 2^-14); a wrong fragment or row errs by O(|x_k w_k|), far more.
 */
describe('matmul on subgroup matrices', async () => {
  const gpu = await getGpu();
  const acts = await activationDtypes();

  for (const act of acts)
    for (const wdt of ['f16', 'f32'] as const) {
      it.runIf(gpu.features.subgroupMatrix)(`M {1, 65, 127} x N {17, 130} x K {32, 768}, act ${act}, weight ${wdt}; a row window and a split weight`, async () => {
        const verdict = await checkSubgroupMatrix(gpu);
        expect(verdict.shape, verdict.reason).not.toBeNull();
        // The checked shape, and 4 subgroups per workgroup where the device has `subgroup_id`.
        const shapes = [verdict.shape!, fourSubgroups(gpu, verdict.shape!)].filter((s): s is SubgroupMatrixShape => !!s);
        for (const shape of shapes) {
          let worst = 0;
          const check = (got: Float32Array, ref: DotRef, xv: Float32Array, K: number, M: number, N: number, what: string) => {
            // sum_k |x_k| of each row, once per row.
            const sumX = Array.from({ length: M }, (_, m) => xv.subarray(m * K, (m + 1) * K).reduce((a, v) => a + Math.abs(v), 0));
            const rounded = (act === 'f32' ? 1 : 0) + (wdt === 'f32' ? 1 : 0);
            for (let i = 0; i < M * N; i++) {
              const tol = (K + 2) * U * ref.absSum[i]! + 2 ** -11 * (rounded * ref.absSum[i]! + (act === 'f16' ? Math.abs(ref.y[i]!) : 0)) + 2 ** -25 * sumX[Math.floor(i / N)]!;
              const err = Math.abs(got[i]! - ref.y[i]!);
              if (!(err <= tol)) expect.fail(`${what} [${i}]: got ${got[i]} want ${ref.y[i]} (err/tol ${(err / tol).toFixed(2)})`);
              worst = Math.max(worst, err / tol);
            }
          };
          let seed = 500;
          for (const K of [32, 768])
            for (const N of [17, 130]) {
              const wv = randn(N * K, seed++, 1 / Math.sqrt(K));
              const wRef = wdt === 'f16' ? Float32Array.from(wv, roundF16) : wv;
              // 130 rows split into parts of 50, 50, 30: each part's columns.
              const w = uploadWeight(gpu, wv, [N, K], wdt, 'w', N > 100 ? 50 * K * (wdt === 'f16' ? 2 : 4) : undefined);
              for (const M of [1, 65, 127]) {
                const xv = asAct(randn(M * K, seed++), act);
                const x = actTensor(gpu, xv, [M, K], act, 'x');
                const y = Tensor.empty(gpu, [M, N], act, 'y');
                record(gpu, 'matmul', (ctx) => matmul(ctx, x, w, y, { variant: 'subgroupMatrix', shape }));
                check(await readAct(y), matmulRef(xv, wRef, M, N, K), xv, K, M, N, `M=${M} N=${N} K=${K}`);
                x.destroy();
                y.destroy();
              }
              // A window: rows [r0, r0 + 40) of x into the same rows of y (the vision MLP's row
              // chunks), r0 the first row offset both bindings allow.
              const r0 = Math.max(rowAlignment(gpu, K, act), rowAlignment(gpu, N, act));
              const M = r0 + 40;
              const xv = asAct(randn(M * K, seed++), act);
              const x = actTensor(gpu, xv, [M, K], act, 'x');
              const y = Tensor.empty(gpu, [M, N], act, 'y');
              record(gpu, 'matmul', (ctx) => matmul(ctx, x, w, y, { variant: 'subgroupMatrix', shape, M: 40, xRowOffset: r0, yRowOffset: r0 }));
              const got = (await readAct(y)).subarray(r0 * N, (r0 + 40) * N);
              check(got, matmulRef(xv.subarray(r0 * K), wRef, 40, N, K), xv.subarray(r0 * K), K, 40, N, `window M=40 at ${r0} N=${N} K=${K}`);
              x.destroy();
              y.destroy();
              destroyWeight(w);
            }
          console.log(`matmul subgroupMatrix act ${act} weight ${wdt} ${describeShape(shape)}: worst err/tol ${worst.toFixed(3)}`);
        }
      });
    }

  it.runIf(gpu.features.subgroupMatrix)('refuses a product with a bias or K % 32 != 0 by name', async () => {
    await checkSubgroupMatrix(gpu);
    for (const [K, withBias] of [[40, false], [64, true]] as const) {
      const w = uploadWeight(gpu, randn(17 * K, K), [17, K], 'f16', 'w');
      const bias = withBias ? Tensor.empty(gpu, [17], 'f32', 'b') : undefined;
      const x = Tensor.empty(gpu, [3, K], 'f32', 'x');
      const y = Tensor.empty(gpu, [3, 17], 'f32', 'y');
      expect(() => record(gpu, 'bad', (ctx) => matmul(ctx, x, w, y, { variant: 'subgroupMatrix', bias }))).toThrow(/no bias and K % 32/);
      for (const t of [x, y, bias]) t?.destroy();
      destroyWeight(w);
    }
  });
});
