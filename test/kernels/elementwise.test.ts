/**
 * rmsnorm, silu_mul, gelu and bias_add against float64 CPU references. Sizes are not multiples of
 * the 256-wide workgroup. Tolerances are per element, derived from WGSL's f32 accuracy rules
 * (correctly rounded + - * ; exp: 3 + 2|x| ULP; sqrt via inverseSqrt: 2 ULP + division 2.5 ULP),
 * with u = 2^-24 the f32 unit roundoff; each test says which terms apply. f16 activations add
 * one output rounding (2^-11 relative, and 2^-25 absolute for half subnormals).
 */
import { describe, expect, it } from 'vitest';
import { rmsnorm } from '../../src/kernels/rmsnorm.js';
import { siluMul, siluMulFused } from '../../src/kernels/silu-mul.js';
import { geluInPlace } from '../../src/kernels/gelu.js';
import { biasAddInPlace } from '../../src/kernels/bias-add.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { KernelError } from '../../src/errors.js';
import { fromF16, roundF16, toF16 } from '../../src/util/f16.js';
import type { Gpu } from '../../src/gpu/device.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { expectClose } from '../helpers/close.js';
import { biasAddRef, erf64, erfc64, gelu64, rmsnormRef, siluMulRef } from './ref/elementwise.js';

const U = 2 ** -24;
/** Smallest normal f32: an adapter may flush results below it to zero. */
const FTZ = 2 ** -126;

type Act = 'f32' | 'f16';

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

/** |got - ref| <= atol(i) + rtol(i) * |ref| per element; the message names the worst element. */
function expectWithin(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  rtol: (i: number) => number,
  atol: number,
  what: string,
): void {
  expect(got.length).toBe(ref.length);
  let failures = 0;
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - ref[i]!);
    const tol = atol + rtol(i) * Math.abs(ref[i]!);
    if (!(err <= tol)) failures++;
    const ratio = Number.isNaN(err) ? Infinity : err / tol;
    if (ratio > worstRatio || worst < 0) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (failures) {
    expect.fail(`${what}: ${failures}/${got.length} out of tolerance; worst [${worst}] got ${got[worst]} want ${ref[worst]} (err/tol ${worstRatio.toExponential(2)})`);
  }
}

/** Output rounding of f16 activations. */
const outRel = (act: Act) => (act === 'f16' ? 2 ** -11 : 0);
const outAbs = (act: Act) => (act === 'f16' ? 2 ** -25 : 0);

describe('rmsnorm', async () => {
  const acts = await activationDtypes();
  for (const act of acts)
    for (const wdt of ['f32', 'f16'] as const)
      // 5120: decoder hidden; 1024: ViT hidden; 5 and 300: short rows and many rows.
      it.each([
        [3, 5120],
        [7, 1024],
        [300, 5],
      ])(`%i x %i, act ${act}, weight ${wdt}`, async (rows, cols) => {
        const gpu = await getGpu();
        const eps = 1e-5;
        const xv = asAct(randn(rows * cols, rows + cols), act);
        // Row 1 tiny (mean x^2 ~ 1e-8 << eps: the result depends on eps), row 2 all zeros (-> 0, not NaN).
        if (rows > 2) {
          for (let c = 0; c < cols; c++) {
            xv[cols + c] = asAct(Float32Array.of(xv[cols + c]! * 1e-4), act)[0]!;
            xv[2 * cols + c] = 0;
          }
        }
        const wv = randn(cols, 99, 0.5);
        const wRounded = wdt === 'f16' ? Float32Array.from(wv, roundF16) : wv;
        const x = actTensor(gpu, xv, [rows, cols], act, 'x');
        const w = Tensor.from(gpu, wdt === 'f16' ? toF16(wv) : wv, [cols], wdt, 'w');
        const y = Tensor.empty(gpu, [rows, cols], act, 'y');
        record(gpu, 'rmsnorm', (ctx) => rmsnorm(ctx, x, w, y, eps));
        const got = await readAct(y);
        const ref = rmsnormRef(xv, wRounded, rows, cols, eps);
        // Sum of squares: ceil(cols / 256) sequential adds per thread + an 8-level tree, all terms
        // >= 0, so relative error <= (ceil(cols/256) + 9) u, halved by the square root; then
        // /cols, +eps, sqrt (<= 4.5 ULP), 1/. (2.5 ULP), two products: 12 u in all.
        const rtol = ((Math.ceil(cols / 256) + 9) / 2 + 12) * U + outRel(act);
        expectWithin(got, ref, () => rtol, outAbs(act), `rmsnorm ${rows}x${cols}`);
        if (rows > 2) expect(Array.from(got.subarray(2 * cols, 3 * cols)).every((v) => v === 0)).toBe(true);
        for (const t of [x, w, y]) t.destroy();
      });

  it('rejects a weight of the wrong length and aliasing x/y', async () => {
    const gpu = await getGpu();
    const x = Tensor.empty(gpu, [2, 8], 'f32', 'x');
    const w = Tensor.empty(gpu, [7], 'f32', 'w');
    const w8 = Tensor.empty(gpu, [8], 'f32', 'w8');
    expect(() => record(gpu, 'bad', (ctx) => rmsnorm(ctx, x, w, Tensor.empty(gpu, [2, 8], 'f32', 'y'), 1e-5))).toThrow(KernelError);
    expect(() => record(gpu, 'bad', (ctx) => rmsnorm(ctx, x, w8, x, 1e-5))).toThrow(KernelError);
    for (const t of [x, w, w8]) t.destroy();
  });
});

describe('silu_mul', async () => {
  const acts = await activationDtypes();
  for (const act of acts)
    for (const layout of ['two tensors', 'fused [T, 2I]'] as const)
      it(`7 x 1000, ${layout}, ${act}`, async () => {
        const gpu = await getGpu();
        const [T, I] = [7, 1000];
        const g = randn(T * I, 5, 4);
        // Extremes: e^-g overflows f32 for g < -88.7; silu(-100) = -3.7e-42 (f32 subnormal).
        g.set([0, -100, 100, -88, 88, 1e-8, -30], 0);
        const gv = asAct(g, act);
        const uv = asAct(randn(T * I, 6), act);
        const out = Tensor.empty(gpu, [T, I], act, 'out');
        const toFree: Tensor[] = [out];
        if (layout === 'two tensors') {
          const gate = actTensor(gpu, gv, [T, I], act, 'gate');
          const up = actTensor(gpu, uv, [T, I], act, 'up');
          toFree.push(gate, up);
          record(gpu, 'silu_mul', (ctx) => siluMul(ctx, gate, up, out));
        } else {
          const fused = new Float32Array(T * 2 * I);
          for (let t = 0; t < T; t++) {
            fused.set(gv.subarray(t * I, (t + 1) * I), t * 2 * I);
            fused.set(uv.subarray(t * I, (t + 1) * I), t * 2 * I + I);
          }
          const gateUp = actTensor(gpu, fused, [T, 2 * I], act, 'gate_up');
          toFree.push(gateUp);
          record(gpu, 'silu_mul', (ctx) => siluMulFused(ctx, gateUp, out));
        }
        const ref = siluMulRef(gv, uv);
        // exp(-g): (3 + 2|g|) ULP, carried relatively through 1 + e (e / (1 + e) <= 1); then +,
        // /. (2.5 ULP), * : (9 + 2|g|) u per element. atol: results below the smallest normal
        // f32 may be flushed to zero.
        expectWithin(await readAct(out), ref, (i) => (9 + 2 * Math.abs(gv[i]!)) * U + outRel(act), Math.max(FTZ, outAbs(act)), `silu_mul ${layout}`);
        for (const t of toFree) t.destroy();
      });
});

describe('gelu (exact, erf)', async () => {
  it('float64 reference erf/erfc matches known values', () => {
    // Tabulated (Abramowitz-Stegun / mpmath) values.
    expectClose(
      [erf64(0.5), erfc64(1), erfc64(2), erfc64(3), erfc64(5), erfc64(10)],
      [0.5204998778130465, 0.15729920705028513, 0.004677734981047266, 2.209049699858544e-5, 1.5374597944280349e-12, 2.088487583762545e-45],
      { atol: 0, rtol: 1e-13 },
    );
  });

  const acts = await activationDtypes();
  for (const act of acts)
    it(`[-10, 10] in steps of 1e-3 plus large |x|, ${act}`, async () => {
      const gpu = await getGpu();
      const grid = Float32Array.from({ length: 20001 }, (_, i) => -10 + i * 1e-3);
      const extra = [0, -0, 1e-20, -1e-20, 20, -20, 50, -50, 1e4, -1e4, 6e4, -6e4, 1e30, -1e30];
      const xv = asAct(Float32Array.from([...grid, ...(act === 'f16' ? extra.filter((v) => Math.abs(v) < 6.5e4) : extra)]), act);
      const x = actTensor(gpu, xv, [xv.length], act, 'x');
      record(gpu, 'gelu', (ctx) => geluInPlace(ctx, x));
      const ref = Float64Array.from(xv, gelu64);
      // x >= 0: x (1 - erfc/2) with erfc/2 <= 1/2, a few u. x < 0: 0.5 x erfc(z), z^2 = x^2/2:
      // the fit's 1.2e-7 (2 u), z^2 rounding carried into exp (z^2 u), exp's 3 + 2 z^2 ULP, and ~8
      // roundings of the polynomial, 1/(1 + z/2) and products: (3 z^2 + 16) u in all (9.9e-6 at
      // x = -10). atol: the tail beyond x ~ -13 is below the smallest normal f32.
      expectWithin(
        await readAct(x),
        ref,
        (i) => (1.5 * xv[i]! * xv[i]! + 16) * U + outRel(act),
        Math.max(FTZ, outAbs(act)),
        'gelu',
      );
      x.destroy();
    });
});

describe('bias_add', async () => {
  const acts = await activationDtypes();
  for (const act of acts)
    for (const bdt of ['f32', 'f16'] as const)
      it.each([
        [300, 17],
        [5, 1000],
      ])(`%i x %i, act ${act}, bias ${bdt}`, async (T, N) => {
        const gpu = await getGpu();
        const xv = asAct(randn(T * N, T), act);
        const bv = randn(N, N);
        const bRounded = bdt === 'f16' ? Float32Array.from(bv, roundF16) : bv;
        const x = actTensor(gpu, xv, [T, N], act, 'x');
        const b = Tensor.from(gpu, bdt === 'f16' ? toF16(bv) : bv, [N], bdt, 'b');
        record(gpu, 'bias_add', (ctx) => biasAddInPlace(ctx, x, b));
        // f32: one correctly rounded f32 add, the same as Float32Array's rounding: exact.
        // f16: that sum rounded again to half.
        const ref = biasAddRef(xv, bRounded, N);
        expectClose(await readAct(x), act === 'f16' ? Float32Array.from(ref, roundF16) : ref, act === 'f16' ? { atol: 2 ** -25, rtol: 2 ** -11 } : { atol: 0, rtol: 0 });
        x.destroy();
        b.destroy();
      });
});
