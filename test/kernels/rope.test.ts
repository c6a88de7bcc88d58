import { describe, expect, it } from 'vitest';
import { buildRopeTable, buildVisionRopeTable, packPatchCoords, ropeInPlace, ropeQK, visionRopeInPlace } from '../../src/kernels/rope.js';
import { ropeInvFreq, yarnAttentionFactor, yarnInvFreq } from '../../src/kernels/rope-freqs.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { toF16, fromF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import type { Gpu } from '../../src/gpu/device.js';
import { compare, expectClose } from '../helpers/close.js';
import { ropeRef, visionRopeRef } from './ref/rope.js';

// f32 tolerance: cos/sin come from float64 tables rounded to f32 and combined by one angle
// addition (<= ~3 ulp = 2e-7 absolute); each output is x1*c - x2*s with |x| <= ~5 (normal
// inputs), so ~1e-6 absolute plus the final rounding (6e-8 relative). f16: inputs and outputs
// rounded to half (2^-11 relative, ~5e-3 absolute at |x| ~ 5).
const TOL = { f32: { atol: 2e-6, rtol: 1e-6 }, f16: { atol: 8e-3, rtol: 2e-3 } };

async function readAct(t: Tensor): Promise<Float32Array> {
  const raw = await t.read();
  return t.dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
}

function upload(gpu: Gpu, data: Float32Array, shape: number[], dtype: 'f32' | 'f16', label: string): Tensor {
  return Tensor.from(gpu, dtype === 'f16' ? toF16(data) : data, shape, dtype, label);
}

describe('rope 1D (decoder)', async () => {
  for (const dtype of await activationDtypes()) {
    // Odd token counts, q (3 heads) and k (1 head) at head_dims 16, 32, 128, theta 1e6 and 1e9.
    it.each([
      [1, 3, 1, 16, 1e6, 0],
      [5, 3, 1, 32, 1e9, 7],
      [37, 3, 1, 128, 1e9, 1000],
      [37, 4, 2, 32, 1e4, 130000],
    ])(`T=%i q heads %i k heads %i d=%i theta=%d pos0=%i, ${dtype}`, async (T, hq, hk, d, theta, pos0) => {
      const gpu = await getGpu();
      const inv = ropeInvFreq(d, theta);
      const table = buildRopeTable(gpu, inv, 131072);
      const qh = randn(T * hq * d, 11 + T);
      const kh = randn(T * hk * d, 12 + T);
      const q = upload(gpu, qh, [T, hq, d], dtype, 'q');
      const k = upload(gpu, kh, [T, hk, d], dtype, 'k');
      record(gpu, 'rope', (ctx) => {
        ropeInPlace(ctx, q, table, { tokens: T, heads: hq, pos0 });
        ropeInPlace(ctx, k, table, { tokens: T, heads: hk, pos0 });
      });
      const pos = Array.from({ length: T }, (_, t) => pos0 + t);
      expectClose(await readAct(q), ropeRef(qh, T, hq, d, pos, inv), TOL[dtype], 'q');
      expectClose(await readAct(k), ropeRef(kh, T, hk, d, pos, inv), TOL[dtype], 'k');
      q.destroy();
      k.destroy();
      table.tensor.destroy();
    });
  }

  it('explicit positions, YaRN frequencies, attention factor, Llama-4 query scale on q only', async () => {
    const gpu = await getGpu();
    // The ministral3 fixture's rope_parameters (fixtures README, mistral3 section).
    const yarn = { headDim: 32, theta: 100, factor: 16, originalMaxPositionEmbeddings: 16, betaFast: 1, betaSlow: 0.125 };
    const inv = yarnInvFreq(yarn);
    const af = yarnAttentionFactor(16, 1, 0.5);
    const table = buildRopeTable(gpu, inv, 256, 16);
    const T = 9;
    const positions = Uint32Array.from([0, 15, 16, 31, 32, 47, 100, 200, 255]);
    const qh = randn(T * 4 * 32, 21);
    const kh = randn(T * 2 * 32, 22);
    const q = Tensor.from(gpu, qh, [T, 4, 32], 'f32', 'q');
    const k = Tensor.from(gpu, kh, [T, 2, 32], 'f32', 'k');
    const pos = Tensor.from(gpu, positions, [T], 'u32', 'pos');
    record(gpu, 'rope', (ctx) =>
      ropeQK(ctx, q, k, table, { tokens: T, heads: 4, kvHeads: 2, positions: pos, attnFactor: af, llama4Beta: 0.3, llama4Orig: 16 }),
    );
    // Scale up to 1.12 * (1 + 0.3 ln 16) = 2.05: tolerance grows with it (one extra rounding for log).
    expectClose(await readAct(q), ropeRef(qh, T, 4, 32, positions, inv, af, 0.3, 16), { atol: 6e-6, rtol: 2e-6 }, 'q');
    expectClose(await readAct(k), ropeRef(kh, T, 2, 32, positions, inv, af), TOL.f32, 'k');
    for (const t of [q, k, pos, table.tensor]) t.destroy();
  });

  it('k heads inside a fused qkv row (row stride, offset); q and v parts untouched', async () => {
    const gpu = await getGpu();
    const [T, hq, hk, d] = [5, 3, 1, 32];
    const row = (hq + 2 * hk) * d;
    const inv = ropeInvFreq(d, 1e6);
    const table = buildRopeTable(gpu, inv, 4096);
    const data = randn(T * row, 31);
    const qkv = Tensor.from(gpu, data, [T, row], 'f32', 'qkv');
    record(gpu, 'rope', (ctx) => ropeInPlace(ctx, qkv, table, { tokens: T, heads: hk, pos0: 3, rowStride: row, offset: hq * d }));
    const got = await readAct(qkv);
    const kIn = new Float32Array(T * hk * d);
    const kGot = new Float32Array(T * hk * d);
    const rest: number[] = [];
    const restWant: number[] = [];
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < row; j++) {
        const inK = j >= hq * d && j < (hq + hk) * d;
        if (inK) {
          kIn[t * hk * d + j - hq * d] = data[t * row + j]!;
          kGot[t * hk * d + j - hq * d] = got[t * row + j]!;
        } else {
          rest.push(got[t * row + j]!);
          restWant.push(data[t * row + j]!);
        }
      }
    }
    expect(rest).toEqual(restWant);
    expectClose(kGot, ropeRef(kIn, T, hk, d, [3, 4, 5, 6, 7], inv), TOL.f32, 'k');
    qkv.destroy();
    table.tensor.destroy();
  });

  it('pos 131071 at theta 1e9, head_dim 128: cos/sin within 1e-5 of float64', async () => {
    const gpu = await getGpu();
    const d = 128;
    const inv = ropeInvFreq(d, 1e9);
    const table = buildRopeTable(gpu, inv, 131072);
    // x = (1, ..., 1, 0, ..., 0): the rotated head is exactly (cos a_i, sin a_i).
    const positions = Uint32Array.from([131071, 131070, 100003, 65537, 4095]);
    const T = positions.length;
    const x = new Float32Array(T * d);
    for (let t = 0; t < T; t++) x.fill(1, t * d, t * d + d / 2);
    const xt = Tensor.from(gpu, x, [T, 1, d], 'f32', 'x');
    const pt = Tensor.from(gpu, positions, [T], 'u32', 'pos');
    record(gpu, 'rope', (ctx) => ropeInPlace(ctx, xt, table, { tokens: T, heads: 1, positions: pt }));
    const got = await readAct(xt);
    const want = new Float64Array(T * d);
    const naive = new Float64Array(T * d);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < d / 2; i++) {
        const a = positions[t]! * inv[i]!;
        want[t * d + i] = Math.cos(a);
        want[t * d + i + d / 2] = Math.sin(a);
        // The naive f32 way: angle = f32(pos * f32(inv_freq)), then an exact cos/sin of that angle.
        const af = Math.fround(positions[t]! * Math.fround(inv[i]!));
        naive[t * d + i] = Math.cos(af);
        naive[t * d + i + d / 2] = Math.sin(af);
      }
    }
    const r = expectClose(got, want, { atol: 1e-5, rtol: 0 }, 'cos/sin at large positions');
    const n = compare(naive, want, { atol: 1e-5, rtol: 0 });
    console.log(`[rope] pos up to 131071, theta 1e9, d 128: table kernel max |err| ${r.maxAbs.toExponential(2)}; naive f32 angle max |err| ${n.maxAbs.toExponential(2)} (${n.failures}/${T * d} over 1e-5)`);
    expect(n.maxAbs).toBeGreaterThan(100 * r.maxAbs); // the fix matters: the naive error is orders larger
    xt.destroy();
    pt.destroy();
    table.tensor.destroy();
  });
});

describe('rope 2D (Pixtral vision)', async () => {
  for (const dtype of await activationDtypes()) {
    it.each([
      // Fixture-like: d 16, grid 16, a tall 5x3 and a wide 2x6 image concatenated.
      [16, 16, 4, [{ rows: 5, cols: 3 }, { rows: 2, cols: 6 }]],
      // Real ViT head_dim 64 on the 64x64 grid, a sample of images including the far corner.
      [64, 64, 3, [{ rows: 3, cols: 64 }, { rows: 64, cols: 2 }, { rows: 1, cols: 1 }]],
    ] as const)(`d=%i grid %i heads %i, ${dtype}`, async (d, gridSide, heads, grids) => {
      const gpu = await getGpu();
      const table = buildVisionRopeTable(gpu, d, 10000, gridSide);
      const coords = packPatchCoords(grids);
      const T = coords.length;
      const xh = randn(T * heads * d, 41 + d);
      const x = upload(gpu, xh, [T, heads, d], dtype, 'x');
      const ct = Tensor.from(gpu, coords, [T], 'u32', 'coords');
      record(gpu, 'vision-rope', (ctx) => visionRopeInPlace(ctx, x, table, ct, { tokens: T, heads }));
      const rc = Array.from(coords, (v) => ({ row: v >>> 16, col: v & 0xffff }));
      // Angles up to 63 rad are exact in the f64 table; same error budget as the 1D case.
      expectClose(await readAct(x), visionRopeRef(xh, heads, d, 10000, gridSide, rc), TOL[dtype], 'x');
      x.destroy();
      ct.destroy();
      table.tensor.destroy();
    });
  }

  it('position ids follow row * (image_size / patch) + col', () => {
    // The packing is (row << 16) | col, the reference indexes HF's table by row * G + col.
    const c = packPatchCoords([{ rows: 2, cols: 3 }]);
    expect(Array.from(c, (v) => (v >>> 16) * 16 + (v & 0xffff))).toEqual([0, 1, 2, 16, 17, 18]);
  });
});
