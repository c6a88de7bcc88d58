import { describe, expect, it } from 'vitest';
import {
  DECODE_SINGLE_MAX, blockDiagonalAttention, causalAttention, createDecodeScratch, createKvCache, decodeAttention, destroyDecodeScratch,
  destroyKvCache, imageSegments, kvWrite,
} from '../../src/kernels/attention.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor, writeBuffer } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { toF16, fromF16, roundF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu, realShapes } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { compare, expectClose, type Tol } from '../helpers/close.js';
import { attentionRef } from '../../src/kernels/attention-ref.js';
import { splitFusedPrefill, splitFusedQkv, takeRows } from './ref/attention.js';

type Act = 'f32' | 'f16';

// Tolerances. Outputs are convex combinations of v rows (|v| <~ 4). f32: each score has a few ulps
// of error relative to sum |q_i k_i| (~1e-6 for unit-normal inputs), which moves each weight by
// the same relative amount; the f32 sums over up to 16k keys add ~sqrt(n) ulps. Observed max
// absolute errors are 3e-8..7e-7 (logged by check()); 5e-6 absolute leaves ~7x margin, and the
// 1e-4 relative term only matters for the few outputs far from zero.
// f16: q, k, v and the output rounded to half (2^-11 relative): scores move by ~2e-3, outputs by
// ~1e-2 at |v| ~ 4.
const TOL: Record<Act, Tol> = { f32: { atol: 5e-6, rtol: 1e-4 }, f16: { atol: 2e-2, rtol: 1e-2 } };

/** expectClose, and logs the observed error next to the tolerance (the numbers behind TOL). */
function check(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol, what: string): void {
  const r = expectClose(got, want, tol, what);
  console.log(`[attention] ${expect.getState().currentTestName}: max abs err ${r.maxAbs.toExponential(2)}, max rel ${r.maxRel.toExponential(2)} (atol ${tol.atol}, rtol ${tol.rtol})`);
}

function up(gpu: Gpu, x: Float32Array, shape: number[], dtype: Act, label: string): Tensor {
  return Tensor.from(gpu, dtype === 'f16' ? toF16(x) : x, shape, dtype, label);
}
async function readAct(t: Tensor): Promise<Float32Array> {
  const raw = await t.read();
  return t.dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
}
/** The values the GPU actually sees (f16-rounded for f16 runs), for the float64 reference. */
function seen(x: Float32Array, dtype: Act): Float32Array {
  return dtype === 'f16' ? fromF16(toF16(x)) : x;
}

/**
 * One decode step over a random cache of nCtx rows. `want` is the float64 reference over the
 * values the cache holds (f16-rounded k and v for an f16 cache); `wantExact` uses the unrounded
 * k and v (differs from `want` only for f16 storage).
 */
async function runDecode(
  gpu: Gpu, dtype: Act, nCtx: number, H: number, KV: number, d: number, seed: number,
  opts: { chunk?: number; qStd?: number; storage?: 'f16'; split?: boolean } = {},
) {
  const st = opts.storage ?? dtype;
  const kx = seen(randn(nCtx * KV * d, seed), dtype);
  const vx = seen(randn(nCtx * KV * d, seed + 1), dtype);
  const [kh, vh] = [seen(kx, st), seen(vx, st)];
  const qh = seen(randn(H * d, seed + 2, opts.qStd ?? 1), dtype);
  const cache = createKvCache(gpu, nCtx + 5, KV, d, dtype, 'kv', opts.storage);
  // Fill the cache directly (a random cache, as after a prefill).
  writeBuffer(gpu, cache.k.buffer, 0, st === 'f16' ? toF16(kh) : kh);
  writeBuffer(gpu, cache.v.buffer, 0, st === 'f16' ? toF16(vh) : vh);
  const q = up(gpu, qh, [H, d], dtype, 'q');
  const out = Tensor.empty(gpu, [H, d], dtype, 'out');
  const scratch = createDecodeScratch(gpu, nCtx + 5, H, d, opts.chunk);
  record(gpu, 'decode', (ctx) => decodeAttention(ctx, out, q, cache, scratch, { nCtx, heads: H, chunk: opts.chunk, split: opts.split }));
  const got = await readAct(out);
  const ref = (k: Float32Array, v: Float32Array) => attentionRef(qh, k, v, 1, { heads: H, kvHeads: KV, d, scale: 1 / Math.sqrt(d), range: () => [0, nCtx] });
  const want = ref(kh, vh);
  const wantExact = st === dtype ? want : ref(kx, vx);
  for (const t of [q, out]) t.destroy();
  destroyKvCache(cache);
  destroyDecodeScratch(scratch);
  return { got, want, wantExact };
}

describe('block-diagonal attention (vision)', async () => {
  for (const dtype of await activationDtypes()) {
    it.each([
      // several images of different sizes: 5x3, 2x6 and 1x1 patches; d 16 (fixture) and 64 (real)
      [[15, 12, 1], 3, 16],
      [[37, 64, 5], 2, 64],
      [[70, 1], 1, 16],
    ] as const)(`images %j, %i heads, d=%i, ${dtype}`, async (lengths, heads, d) => {
      const gpu = await getGpu();
      const T = lengths.reduce((a, b) => a + b, 0);
      const n = T * heads * d;
      const [qh, kh, vh] = [randn(n, 1 + T), randn(n, 2 + T), randn(n, 3 + T)].map((x) => seen(x, dtype)) as [Float32Array, Float32Array, Float32Array];
      const seg = imageSegments(lengths);
      const q = up(gpu, qh, [T, heads, d], dtype, 'q');
      const k = up(gpu, kh, [T, heads, d], dtype, 'k');
      const v = up(gpu, vh, [T, heads, d], dtype, 'v');
      const s = Tensor.from(gpu, seg, [T, 2], 'u32', 'seg');
      const out = Tensor.empty(gpu, [T, heads, d], dtype, 'out');
      record(gpu, 'attn', (ctx) => blockDiagonalAttention(ctx, out, q, k, v, s, { tokens: T, heads, kvHeads: heads, headDim: d, keyRows: T }));
      const want = attentionRef(qh, kh, vh, T, { heads, kvHeads: heads, d, scale: 1 / Math.sqrt(d), range: (t) => [seg[2 * t]!, seg[2 * t + 1]!] });
      check(await readAct(out), want, TOL[dtype], 'out');
      for (const t of [q, k, v, s, out]) t.destroy();
    });
  }

  it('q, k, v as views of one fused qkv activation, custom scale', async () => {
    const gpu = await getGpu();
    const [T, H, d] = [29, 2, 16];
    const row = 3 * H * d;
    const qkv = randn(T * row, 7);
    const [qp, kp, vp] = splitFusedQkv(qkv, T, H * d);
    const seg = imageSegments([20, 9]);
    const x = Tensor.from(gpu, qkv, [T, row], 'f32', 'qkv');
    const s = Tensor.from(gpu, seg, [T, 2], 'u32', 'seg');
    const out = Tensor.empty(gpu, [T, H, d], 'f32', 'out');
    record(gpu, 'attn', (ctx) =>
      blockDiagonalAttention(ctx, out, x, x, x, s, {
        tokens: T, heads: H, kvHeads: H, headDim: d, keyRows: T, scale: 0.3,
        qView: { rowStride: row, offset: 0 }, kView: { rowStride: row, offset: H * d }, vView: { rowStride: row, offset: 2 * H * d },
      }),
    );
    const want = attentionRef(qp, kp, vp, T, { heads: H, kvHeads: H, d, scale: 0.3, range: (t) => [seg[2 * t]!, seg[2 * t + 1]!] });
    check(await readAct(out), want, TOL.f32, 'out');
    for (const t of [x, s, out]) t.destroy();
  });

  it('large-magnitude scores (|s| ~ 1e3) stay finite and accurate', async () => {
    const gpu = await getGpu();
    const [T, H, d] = [300, 2, 64];
    const n = T * H * d;
    // q, k ~ N(0, 25): scores ~ N(0, 25^2 * 25^2 * 64 / 64) -> |s| up to a few thousand.
    const qh = randn(n, 91, 25);
    const kh = randn(n, 92, 25);
    const vh = randn(n, 93);
    const seg = imageSegments([100, 200]);
    const [q, k, v] = [qh, kh, vh].map((x, i) => Tensor.from(gpu, x, [T, H, d], 'f32', `x${i}`)) as [Tensor, Tensor, Tensor];
    const s = Tensor.from(gpu, seg, [T, 2], 'u32', 'seg');
    const out = Tensor.empty(gpu, [T, H, d], 'f32', 'out');
    record(gpu, 'attn', (ctx) => blockDiagonalAttention(ctx, out, q, k, v, s, { tokens: T, heads: H, kvHeads: H, headDim: d, keyRows: T }));
    const got = await readAct(out);
    expect(got.every(Number.isFinite)).toBe(true);
    const want = attentionRef(qh, kh, vh, T, { heads: H, kvHeads: H, d, scale: 1 / 8, range: (t) => [seg[2 * t]!, seg[2 * t + 1]!] });
    // A score of magnitude S carries ~S * 1e-7 absolute f32 error, which moves near-tied softmax
    // weights by that much: with S ~ 3e3, ~3e-4 relative to |v| ~ 3.
    check(got, want, { atol: 2e-3, rtol: 1e-3 }, 'out');
    for (const t of [q, k, v, s, out]) t.destroy();
  });

  it.runIf(realShapes)('real shape: 4096 patches x 16 heads x 64 keys/values, 16 sampled query rows', async () => {
    // The full 4096-query run is ~70 GFLOP, minutes on SwiftShader; the kernel treats query rows
    // independently (one thread each), so 16 sampled rows against all 4096 keys exercise the same
    // code: 4096-key online softmax over 256+ tiles, all 16 heads (the bench times the full run).
    const gpu = await getGpu();
    const [T, H, d] = [4096, 16, 64];
    const rows = [0, 1, 63, 64, 1000, 2047, 2048, 2049, 3000, 3333, 4000, 4031, 4032, 4093, 4094, 4095];
    const qAll = randn(T * H * d, 51);
    const kh = randn(T * H * d, 52);
    const vh = randn(T * H * d, 53);
    const qh = takeRows(qAll, H * d, rows);
    const Q = rows.length;
    const seg = new Uint32Array(2 * Q).map((_, i) => (i % 2 ? T : 0));
    const q = Tensor.from(gpu, qh, [Q, H, d], 'f32', 'q');
    const k = Tensor.from(gpu, kh, [T, H, d], 'f32', 'k');
    const v = Tensor.from(gpu, vh, [T, H, d], 'f32', 'v');
    const s = Tensor.from(gpu, seg, [Q, 2], 'u32', 'seg');
    const out = Tensor.empty(gpu, [Q, H, d], 'f32', 'out');
    record(gpu, 'attn', (ctx) => blockDiagonalAttention(ctx, out, q, k, v, s, { tokens: Q, heads: H, kvHeads: H, headDim: d, keyRows: T }));
    const want = attentionRef(qAll, kh, vh, T, { heads: H, kvHeads: H, d, scale: 1 / 8, range: () => [0, T], rows });
    check(await readAct(out), want, TOL.f32, 'sampled rows');
    for (const t of [q, k, v, s, out]) t.destroy();
  });
});

describe('causal prefill over a KV cache (kvWrite + causalAttention)', async () => {
  for (const dtype of await activationDtypes()) {
    it.each([
      // [T, pos0, heads, kvHeads, d]: GQA 3 over 1, odd sizes, an empty and a filled history
      [1, 0, 3, 1, 32],
      [5, 0, 3, 1, 32],
      [37, 40, 3, 1, 32],
      [37, 11, 4, 2, 32],
    ] as const)(`T=%i pos0=%i heads %i/%i d=%i, ${dtype}`, async (T, pos0, H, KV, d) => {
      const gpu = await getGpu();
      const maxCtx = pos0 + T + 3;
      // New tokens come as one fused qkv activation [T, (H + 2 KV) d]; history rows separately.
      const row = (H + 2 * KV) * d;
      const qkv = seen(randn(T * row, 100 + T), dtype);
      const histK = seen(randn(pos0 * KV * d, 200 + T), dtype);
      const histV = seen(randn(pos0 * KV * d, 300 + T), dtype);
      const cache = createKvCache(gpu, maxCtx, KV, d, dtype, 'layer0');
      const x = up(gpu, qkv, [T, row], dtype, 'qkv');
      const hk = up(gpu, histK, [pos0 * KV * d], dtype, 'hk');
      const hv = up(gpu, histV, [pos0 * KV * d], dtype, 'hv');
      const out = Tensor.empty(gpu, [T, H, d], dtype, 'out');
      record(gpu, 'prefill', (ctx) => {
        if (pos0 > 0) kvWrite(ctx, cache, hk, hv, { tokens: pos0, pos0: 0 });
        kvWrite(ctx, cache, x, x, { tokens: T, pos0, kView: { rowStride: row, offset: H * d }, vView: { rowStride: row, offset: (H + KV) * d } });
        causalAttention(ctx, out, x, cache, { tokens: T, heads: H, pos0, qView: { rowStride: row, offset: 0 } });
      });
      // Reference cache rows 0..pos0+T-1 and q [T, H, d].
      const { qh, kAll, vAll } = splitFusedPrefill(qkv, histK, histV, T, pos0, H, KV, d);
      const cached = await readAct(cache.k);
      expect(Array.from(cached.subarray(0, kAll.length))).toEqual(Array.from(kAll)); // kvWrite is a copy
      const want = attentionRef(qh, kAll, vAll, T, { heads: H, kvHeads: KV, d, scale: 1 / Math.sqrt(d), range: (t) => [0, pos0 + t + 1] });
      check(await readAct(out), want, TOL[dtype], 'out');
      for (const t of [x, hk, hv, out]) t.destroy();
      destroyKvCache(cache);
    });
  }

  it.runIf(realShapes)('Nemo shape 32/8 heads x 128: 48 new tokens after 200 cached', async () => {
    const gpu = await getGpu();
    const [T, pos0, H, KV, d] = [48, 200, 32, 8, 128];
    const cache = createKvCache(gpu, 512, KV, d, 'f32');
    const kAll = randn((pos0 + T) * KV * d, 61);
    const vAll = randn((pos0 + T) * KV * d, 62);
    const qh = randn(T * H * d, 63);
    const kt = Tensor.from(gpu, kAll, [pos0 + T, KV, d], 'f32', 'k');
    const vt = Tensor.from(gpu, vAll, [pos0 + T, KV, d], 'f32', 'v');
    const q = Tensor.from(gpu, qh, [T, H, d], 'f32', 'q');
    const out = Tensor.empty(gpu, [T, H, d], 'f32', 'out');
    record(gpu, 'prefill', (ctx) => {
      kvWrite(ctx, cache, kt, vt, { tokens: pos0 + T, pos0: 0 });
      causalAttention(ctx, out, q, cache, { tokens: T, heads: H, pos0 });
    });
    const want = attentionRef(qh, kAll, vAll, T, { heads: H, kvHeads: KV, d, scale: 1 / Math.sqrt(d), range: (t) => [0, pos0 + t + 1] });
    check(await readAct(out), want, TOL.f32, 'out');
    for (const t of [kt, vt, q, out]) t.destroy();
    destroyKvCache(cache);
  });
});

// Both forms past one chunk: split-K (a workgroup per chunk and kv head, then the combine; GPUs)
// and one pass (a workgroup per kv head walking the chunks, merging online; CPU adapters). The
// same tolerance: the same f32 softmax and sums, merged in another order.
describe('decode attention (split-K over the KV cache, or one pass walking it)', async () => {
  for (const dtype of await activationDtypes()) {
    it.each([
      // [nCtx, heads, kvHeads, d, chunk]: one key, one partial chunk, several, uneven chunks
      [1, 3, 1, 32, undefined],
      [5, 3, 1, 32, undefined],
      [37, 3, 1, 16, 7],
      [300, 4, 2, 64, undefined],
      [1000, 6, 2, 32, 33],
    ] as const)(`ctx %i heads %i/%i d=%i chunk %s, ${dtype}, split and one pass past one chunk`, async (nCtx, H, KV, d, chunk) => {
      const gpu = await getGpu();
      // One chunk (the first two cases) is the same single pass either way.
      for (const split of nCtx > (chunk ?? DECODE_SINGLE_MAX) ? [true, false] : [undefined]) {
        const { got, want } = await runDecode(gpu, dtype, nCtx, H, KV, d, nCtx, { chunk, split });
        check(got, want, TOL[dtype], `out, split ${split}`);
      }
    });
  }

  it('large-magnitude scores (q ~ N(0, 30^2)): stable across chunks, split and one pass', async () => {
    const gpu = await getGpu();
    for (const split of [true, false]) {
      // chunk 64: 32 chunks, so the one-pass merge rescales its running sums many times.
      const { got, want } = await runDecode(gpu, 'f32', 2000, 4, 1, 64, 77, { qStd: 30, split, chunk: 64 });
      expect(got.every(Number.isFinite)).toBe(true);
      // Scores ~ N(0, 30^2 * 64 / 64) up to ~150: absolute f32 score error ~1e-5, same as weights' relative error.
      check(got, want, { atol: 1e-4, rtol: 1e-3 }, `out, split ${split}`);
    }
  });

  // Both forms at 4k; at 16k the adapter's default (split-K on lavapipe, one pass on SwiftShader).
  it.runIf(realShapes).each([4096, 16384])('Nemo shape 32/8 heads x 128 at context %i', async (nCtx) => {
    const gpu = await getGpu();
    for (const split of nCtx === 4096 ? [true, false] : [undefined]) {
      const { got, want } = await runDecode(gpu, 'f32', nCtx, 32, 8, 128, 5, { split });
      check(got, want, TOL.f32, `out, split ${split}`);
    }
  });

  // Short contexts (<= DECODE_SINGLE_MAX keys) take one pass: one workgroup per kv head, the
  // combine folded in. Same tolerance as the split path (same f32 softmax and sums).
  it.each([
    [DECODE_SINGLE_MAX, 32, 8, 128], // Nemo heads at the largest single-pass context
    [131, 32, 8, 128], // Nemo heads, an odd context
    [77, 6, 2, 32], // GQA 3, keys not a multiple of anything
  ] as const)('one pass at context %i, heads %i/%i x %i: one dispatch, float64 reference', async (nCtx, H, KV, d) => {
    const gpu = await getGpu();
    for (const dtype of await activationDtypes()) {
      const before = gpu.ledger.dispatches;
      const { got, want } = await runDecode(gpu, dtype, nCtx, H, KV, d, nCtx, {});
      expect(gpu.ledger.dispatches - before).toBe(1);
      check(got, want, TOL[dtype], `out ${dtype}`);
    }
    const count = async (split: boolean) => {
      const before = gpu.ledger.dispatches;
      await runDecode(gpu, 'f32', DECODE_SINGLE_MAX + 1, H, KV, d, 3, { split });
      return gpu.ledger.dispatches - before;
    };
    // Past the limit: split-K + combine, or still one pass walking two chunks.
    expect([await count(true), await count(false)]).toEqual([2, 1]);
  });
});

// f16 KV storage: the cache holds halves whatever the activation dtype. Under f32 activations
// (every adapter, `KV_F16`: packed u32 pairs + unpack2x16float) unpacking is exact, so against a
// float64 reference computed from the f16-ROUNDED k and v the only error left is the f32
// softmax/accumulation error: the same TOL.f32 as an f32 cache. Under f16 activations (shader-f16)
// the native f16 path runs: TOL.f16.
describe('f16 KV storage (halves on any adapter)', async () => {
  /** Values as an f16 cache holds them. */
  const half = (x: Float32Array) => x.map(roundF16);

  for (const dtype of await activationDtypes()) {
    it(`kvWrite rounds to the f16 bits of the source (toF16), rows at pos0 from a fused qkv view, ${dtype}`, async () => {
      const gpu = await getGpu();
      const [T, pos0, H, KV, d] = [7, 3, 2, 3, 20];
      const row = (H + 2 * KV) * d;
      // Normal values at several scales, plus rounding ties (1 + 2^-11: ties to even = 1;
      // 1 + 3 * 2^-11: ties to even = 1 + 2^-9), f16 subnormals, signed zeros and the largest half.
      const qkv = randn(T * row, 17).map((x, i) => x * 10 ** ((i % 7) - 3));
      const special = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2 ** -20, -3 * 2 ** -25, 0, -0, 65504, -65504, 1e-9, 6.1e-5];
      special.forEach((x, i) => (qkv[H * d + 5 * i] = x)); // k part of row 0
      const x = seen(qkv, dtype);
      const cache = createKvCache(gpu, pos0 + T + 2, KV, d, dtype, 'kv', 'f16');
      expect(cache.k.buffer.size).toBe((pos0 + T + 2) * KV * d * 2); // half the bytes of f32
      const src = up(gpu, x, [T, row], dtype, 'qkv');
      record(gpu, 'kv_write', (ctx) => kvWrite(ctx, cache, src, src, { tokens: T, pos0, kView: { rowStride: row, offset: H * d }, vView: { rowStride: row, offset: (H + KV) * d } }));
      const [kBits, vBits] = [(await cache.k.read()) as Uint16Array, (await cache.v.read()) as Uint16Array];
      for (const [bits, off] of [[kBits, H * d], [vBits, (H + KV) * d]] as const) {
        const want = new Uint16Array((pos0 + T + 2) * KV * d); // rows outside [pos0, pos0 + T) stay zero
        for (let t = 0; t < T; t++) want.set(toF16(x.subarray(t * row + off, t * row + off + KV * d)), (pos0 + t) * KV * d);
        expect(Array.from(bits)).toEqual(Array.from(want));
      }
      src.destroy();
      destroyKvCache(cache);
    });

    it.each([
      // [T, pos0, heads, kvHeads, d]: single token, GQA 3 over 1, GQA 2 with history, odd sizes
      [1, 0, 3, 1, 32],
      [37, 11, 4, 2, 32],
      [19, 45, 6, 2, 12],
    ] as const)(`causal prefill T=%i pos0=%i heads %i/%i d=%i, ${dtype} activations`, async (T, pos0, H, KV, d) => {
      const gpu = await getGpu();
      const row = (H + 2 * KV) * d;
      const qkv = seen(randn(T * row, 400 + T), dtype);
      const histK = seen(randn(pos0 * KV * d, 500 + T), dtype);
      const histV = seen(randn(pos0 * KV * d, 600 + T), dtype);
      const cache = createKvCache(gpu, pos0 + T + 3, KV, d, dtype, 'kv', 'f16');
      const x = up(gpu, qkv, [T, row], dtype, 'qkv');
      const hk = up(gpu, histK, [pos0 * KV * d], dtype, 'hk');
      const hv = up(gpu, histV, [pos0 * KV * d], dtype, 'hv');
      const out = Tensor.empty(gpu, [T, H, d], dtype, 'out');
      record(gpu, 'prefill', (ctx) => {
        if (pos0 > 0) kvWrite(ctx, cache, hk, hv, { tokens: pos0, pos0: 0 });
        kvWrite(ctx, cache, x, x, { tokens: T, pos0, kView: { rowStride: row, offset: H * d }, vView: { rowStride: row, offset: (H + KV) * d } });
        causalAttention(ctx, out, x, cache, { tokens: T, heads: H, pos0, qView: { rowStride: row, offset: 0 } });
      });
      const { qh, kAll, vAll } = splitFusedPrefill(qkv, histK, histV, T, pos0, H, KV, d);
      const want = attentionRef(qh, half(kAll), half(vAll), T, { heads: H, kvHeads: KV, d, scale: 1 / Math.sqrt(d), range: (t) => [0, pos0 + t + 1] });
      check(await readAct(out), want, TOL[dtype], 'out vs f16-rounded k, v');
      for (const t of [x, hk, hv, out]) t.destroy();
      destroyKvCache(cache);
    });

    it.each([
      // [nCtx, heads, kvHeads, d, chunk]: one key, uneven chunks, GQA 3 over 2 chunks of 33
      [1, 3, 1, 32, undefined],
      [37, 3, 1, 16, 7],
      [1000, 6, 2, 32, 33],
    ] as const)(`decode ctx %i heads %i/%i d=%i chunk %s, ${dtype} activations`, async (nCtx, H, KV, d, chunk) => {
      const gpu = await getGpu();
      for (const split of [true, false]) {
        const { got, want } = await runDecode(gpu, dtype, nCtx, H, KV, d, nCtx + 7, { chunk, storage: 'f16', split });
        check(got, want, TOL[dtype], `out vs f16-rounded k, v, split ${split}`);
      }
    });
  }

  it.runIf(realShapes)('Nemo shape 32/8 heads x 128 at context 4096: kvWrite + causal prefill of the last 5 rows, f32 activations', async () => {
    const gpu = await getGpu();
    const [T, H, KV, d, nCtx] = [5, 32, 8, 128, 4096];
    const pos0 = nCtx - T;
    const kAll = randn(nCtx * KV * d, 71);
    const vAll = randn(nCtx * KV * d, 72);
    const qh = randn(T * H * d, 73);
    const cache = createKvCache(gpu, nCtx, KV, d, 'f32', 'kv', 'f16');
    const kt = Tensor.from(gpu, kAll, [nCtx, KV, d], 'f32', 'k');
    const vt = Tensor.from(gpu, vAll, [nCtx, KV, d], 'f32', 'v');
    const q = Tensor.from(gpu, qh, [T, H, d], 'f32', 'q');
    const out = Tensor.empty(gpu, [T, H, d], 'f32', 'out');
    record(gpu, 'prefill', (ctx) => {
      kvWrite(ctx, cache, kt, vt, { tokens: nCtx, pos0: 0 });
      causalAttention(ctx, out, q, cache, { tokens: T, heads: H, pos0 });
    });
    const got = await readAct(out);
    const args = { heads: H, kvHeads: KV, d, scale: 1 / Math.sqrt(d), range: (t: number): [number, number] => [0, pos0 + t + 1] };
    check(got, attentionRef(qh, half(kAll), half(vAll), T, args), TOL.f32, 'out vs f16-rounded k, v');
    logF16Effect(got, attentionRef(qh, kAll, vAll, T, args));
    for (const t of [kt, vt, q, out]) t.destroy();
    destroyKvCache(cache);
  });

  it.runIf(realShapes)('Nemo shape 32/8 heads x 128 at context 4096: decode, f32 activations', async () => {
    const gpu = await getGpu();
    const { got, want, wantExact } = await runDecode(gpu, 'f32', 4096, 32, 8, 128, 9, { storage: 'f16' });
    check(got, want, TOL.f32, 'out vs f16-rounded k, v');
    logF16Effect(got, wantExact);
  });

  /**
   * The error that f16 storage itself adds (against the reference over the unrounded k and v),
   * logged to document it (observed 3.8e-5 max abs at 4096 keys: the rounding errors of many keys
   * average out). Bound: each k, v element moves by <= 2^-12 relative (half an f16 ulp), so in the
   * worst case (one key holding all the weight, |v| <= ~5.3 for 4M normal samples) the output moves
   * by 2^-12 * 5.3 = 1.3e-3, plus the weights' shift from scores moving by ~|q||k| 2^-12 / sqrt(d)
   * ~ 3e-4: 3e-3 absolute. It must also exceed the f32 tolerance, which shows the cache really
   * holds halves (an f32 cache gives < 1e-6 here).
   */
  function logF16Effect(got: Float32Array, wantExact: Float64Array): void {
    const r = compare(got, wantExact, { atol: 3e-3, rtol: 0 });
    console.log(`[attention] ${expect.getState().currentTestName}: f16 storage effect vs unrounded k, v: max abs err ${r.maxAbs.toExponential(2)}, max rel ${r.maxRel.toExponential(2)}`);
    expect(r.failures).toBe(0);
    expect(r.maxAbs).toBeGreaterThan(TOL.f32.atol);
  }

});

describe('attention argument checks', () => {
  it('rejects shapes the kernels cannot serve, naming the kernel', async () => {
    const gpu = await getGpu();
    const q = Tensor.empty(gpu, [4, 2, 132], 'f32', 'q');
    const seg = Tensor.from(gpu, imageSegments([4]), [4, 2], 'u32', 'seg');
    const cache = createKvCache(gpu, 8, 1, 32, 'f32');
    const small = Tensor.empty(gpu, [4, 3, 32], 'f32', 'small');
    const out = Tensor.empty(gpu, [4, 3, 32], 'f32', 'out');
    const scratch = createDecodeScratch(gpu, 8, 3, 32);
    const halfCache = createKvCache(gpu, 8, 1, 32, 'f32', 'kv', 'f16');
    const halfRows = Tensor.empty(gpu, [4, 1, 32], 'f16', 'rows');
    // an f32 cache under f16 activations has no kernel variant
    expect(() => createKvCache(gpu, 8, 1, 32, 'f16', 'kv', 'f32')).toThrow(/f32 cache under f16 activations/);
    record(gpu, 'checks', (ctx) => {
      // head_dim 132 > 128 (register capacity)
      expect(() => blockDiagonalAttention(ctx, q, q, q, q, seg, { tokens: 4, heads: 2, kvHeads: 2, headDim: 132, keyRows: 4 })).toThrow(/attention_prefill.*head_dim/);
      // positions 6..9 do not fit a cache of 8 rows
      expect(() => causalAttention(ctx, out, small, cache, { tokens: 4, heads: 3, pos0: 6 })).toThrow(/exceed the cache/);
      // 3 query heads are not a multiple of 2 kv heads
      expect(() => blockDiagonalAttention(ctx, out, small, small, small, seg, { tokens: 4, heads: 3, kvHeads: 2, headDim: 32, keyRows: 4 })).toThrow(/kv heads/);
      // context beyond the cache
      expect(() => decodeAttention(ctx, out, small, cache, scratch, { nCtx: 9, heads: 3 })).toThrow(/attention_decode.*context/);
      // f16 rows into an f16-storage cache made for f32 activations
      expect(() => kvWrite(ctx, halfCache, halfRows, halfRows, { tokens: 4, pos0: 0 })).toThrow(/kv_write.*f16 activations with a cache made for f32/);
    });
    for (const t of [q, seg, small, out, halfRows]) t.destroy();
    destroyKvCache(cache);
    destroyKvCache(halfCache);
    destroyDecodeScratch(scratch);
  });
});
