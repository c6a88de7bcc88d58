/**
 * Prefill attention on subgroup matrices (shaders/attention_prefill_subgroup_matrix.wgsl), wherever
 * the adapter has `chromium-experimental-subgroup-matrix` (lavapipe from Mesa 26, 8 x 8 fragments:
 * `.ci/subgroup-matrix`); elsewhere the cases skip saying so, unless
 * PIXTRAL_REQUIRE_SUBGROUP_MATRIX=1 makes a missing feature a failure.
 * Tolerance: `attentionF16Bound` per output, from the float64 reference over the values the
 * kernel reads: the f16 roundings of scale q, k, v (where not already f16), the weights and an f16
 * output, propagated through the softmax worst-case. Measured err / bound is logged; a misplaced
 * fragment or a skipped rescale errs by O(|v|), tens of bounds.
 */
import { describe, expect, it } from 'vitest';
import { blockDiagonalAttention, causalAttention, createKvCache, destroyKvCache, imageSegments, kvWrite } from '../../src/kernels/attention.js';
import { checkSubgroupMatrix } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape } from '../../src/kernels/subgroup-matrix.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { fromF16, toF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { attentionRef, type AttnRefArgs } from '../../src/kernels/attention-ref.js';
import { attentionF16Bound, splitFusedPrefill, splitFusedQkv } from './ref/attention.js';

type Act = 'f32' | 'f16';

function up(gpu: Gpu, x: Float32Array, shape: number[], dtype: Act, label: string): Tensor {
  return Tensor.from(gpu, dtype === 'f16' ? toF16(x) : x, shape, dtype, label);
}
async function readAct(t: Tensor): Promise<Float32Array> {
  const raw = await t.read();
  return t.dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
}
function seen(x: Float32Array, dtype: Act | 'f32'): Float32Array {
  return dtype === 'f16' ? fromF16(toF16(x)) : x;
}

/** Fails at the first output past its bound; returns the worst err / bound. */
function within(got: Float32Array, want: Float64Array, bound: Float64Array, what: string): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= bound[i]!)) expect.fail(`${what} [${i}]: got ${got[i]}, float64 ${want[i]}, bound ${bound[i]!.toExponential(2)}`);
    worst = Math.max(worst, err / bound[i]!);
  }
  return worst;
}

describe('prefill attention on subgroup matrices', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();
  const required = typeof process !== 'undefined' && process.env?.PIXTRAL_REQUIRE_SUBGROUP_MATRIX === '1';
  // onCpu: the default on lavapipe too, so the default-path case below sees this kernel.
  const verdict = await checkSubgroupMatrix(gpu, { onCpu: true });
  const shape = verdict.shape;
  if (!shape) console.log(`attention_prefill subgroupMatrix: not used on this adapter: ${verdict.reason}`);
  const runs = it.runIf(required || !!shape);
  const log = (what: string, worst: number) => console.log(`attention_prefill subgroupMatrix ${shape ? describeShape(shape) : ''} ${what}: worst err / bound ${worst.toFixed(3)}`);

  /**
   * Causal prefill of T new tokens (one fused qkv activation) after pos0 cached rows; the cache in
   * `storage`. Returns got, the float64 reference over what the cache holds, and the bound.
   */
  async function causal(T: number, pos0: number, H: number, KV: number, d: number, dtype: Act, storage: Act, variant?: 'simt' | 'subgroupMatrix') {
    const row = (H + 2 * KV) * d;
    const qkv = seen(randn(T * row, 100 + T + d), dtype);
    const histK = seen(randn(pos0 * KV * d, 200 + T), dtype);
    const histV = seen(randn(pos0 * KV * d, 300 + T), dtype);
    const cache = createKvCache(gpu, pos0 + T + 3, KV, d, dtype, 'layer0', storage === dtype ? undefined : storage);
    const x = up(gpu, qkv, [T, row], dtype, 'qkv');
    // (one unused row when there is no history: a tensor cannot be empty)
    const hk = up(gpu, pos0 ? histK : new Float32Array(KV * d), [Math.max(pos0, 1) * KV * d], dtype, 'hk');
    const hv = up(gpu, pos0 ? histV : new Float32Array(KV * d), [Math.max(pos0, 1) * KV * d], dtype, 'hv');
    const out = Tensor.empty(gpu, [T, H, d], dtype, 'out');
    record(gpu, 'prefill', (ctx) => {
      if (pos0 > 0) kvWrite(ctx, cache, hk, hv, { tokens: pos0, pos0: 0 });
      kvWrite(ctx, cache, x, x, { tokens: T, pos0, kView: { rowStride: row, offset: H * d }, vView: { rowStride: row, offset: (H + KV) * d } });
      causalAttention(ctx, out, x, cache, { tokens: T, heads: H, pos0, qView: { rowStride: row, offset: 0 }, variant });
    });
    const { qh, kAll, vAll } = splitFusedPrefill(qkv, histK, histV, T, pos0, H, KV, d);
    const [kc, vc] = [seen(kAll, storage), seen(vAll, storage)];
    const args: AttnRefArgs = { heads: H, kvHeads: KV, d, scale: 1 / Math.sqrt(d), range: (t) => [0, pos0 + t + 1] };
    const got = await readAct(out);
    for (const t of [x, hk, hv, out]) t.destroy();
    destroyKvCache(cache);
    const exactInF16 = storage === 'f16';
    return {
      got,
      want: attentionRef(qh, kc, vc, T, args),
      bound: attentionF16Bound(qh, kc, vc, T, args, { k: !exactInF16, v: !exactInF16, out: dtype === 'f16' }),
    };
  }

  for (const dtype of dtypes) {
    for (const storage of dtype === 'f32' ? (['f32', 'f16'] as const) : (['f16'] as const)) {
      runs(`causal over a ${storage} cache, ${dtype} activations: T x pos0 x heads/kv x d in {5x0x3/1x32, 37x40x4/2x32, 70x45x4/1x128, 33x0x2/2x16}`, async () => {
        let worst = 0;
        for (const [T, pos0, H, KV, d] of [[5, 0, 3, 1, 32], [37, 40, 4, 2, 32], [70, 45, 4, 1, 128], [33, 0, 2, 2, 16]] as const) {
          const r = await causal(T, pos0, H, KV, d, dtype, storage, 'subgroupMatrix');
          worst = Math.max(worst, within(r.got, r.want, r.bound, `T=${T} pos0=${pos0} d=${d}`));
        }
        log(`causal ${dtype} cache ${storage}`, worst);
      });
    }

    runs(`block-diagonal (images 15+12+1, 3 heads, d 16; 37+64+5, 2 heads, d 64), ${dtype}`, async () => {
      let worst = 0;
      for (const [lengths, H, d] of [[[15, 12, 1], 3, 16], [[37, 64, 5], 2, 64]] as const) {
        const T = lengths.reduce((a, b) => a + b, 0);
        const n = T * H * d;
        const [qh, kh, vh] = [randn(n, 1 + T), randn(n, 2 + T), randn(n, 3 + T)].map((x) => seen(x, dtype)) as [Float32Array, Float32Array, Float32Array];
        const seg = imageSegments(lengths);
        const [q, k, v] = [qh, kh, vh].map((x, i) => up(gpu, x, [T, H, d], dtype, `x${i}`)) as [Tensor, Tensor, Tensor];
        const s = Tensor.from(gpu, seg, [T, 2], 'u32', 'seg');
        const out = Tensor.empty(gpu, [T, H, d], dtype, 'out');
        record(gpu, 'attn', (ctx) => blockDiagonalAttention(ctx, out, q, k, v, s, { tokens: T, heads: H, kvHeads: H, headDim: d, keyRows: T, variant: 'subgroupMatrix' }));
        const args: AttnRefArgs = { heads: H, kvHeads: H, d, scale: 1 / Math.sqrt(d), range: (t) => [seg[2 * t]!, seg[2 * t + 1]!] };
        const rounded = { k: dtype === 'f32', v: dtype === 'f32', out: dtype === 'f16' };
        worst = Math.max(worst, within(await readAct(out), attentionRef(qh, kh, vh, T, args), attentionF16Bound(qh, kh, vh, T, args, rounded), `images ${lengths}`));
        for (const t of [q, k, v, s, out]) t.destroy();
      }
      log(`block-diagonal ${dtype}`, worst);
    });
  }

  runs('views of one fused qkv, a custom scale, and rows with an empty key range (zeros, not NaN)', async () => {
    const [T, H, d] = [29, 2, 16];
    const row = 3 * H * d;
    const qkv = randn(T * row, 7);
    const [qp, kp, vp] = splitFusedQkv(qkv, T, H * d);
    const seg = imageSegments([20, 9]);
    for (const t of [3, 21, 28]) seg[2 * t + 1] = seg[2 * t]!; // empty ranges
    const x = Tensor.from(gpu, qkv, [T, row], 'f32', 'qkv');
    const s = Tensor.from(gpu, seg, [T, 2], 'u32', 'seg');
    const out = Tensor.empty(gpu, [T, H, d], 'f32', 'out');
    record(gpu, 'attn', (ctx) =>
      blockDiagonalAttention(ctx, out, x, x, x, s, {
        tokens: T, heads: H, kvHeads: H, headDim: d, keyRows: T, scale: 0.3, variant: 'subgroupMatrix',
        qView: { rowStride: row, offset: 0 }, kView: { rowStride: row, offset: H * d }, vView: { rowStride: row, offset: 2 * H * d },
      }),
    );
    const args: AttnRefArgs = { heads: H, kvHeads: H, d, scale: 0.3, range: (t) => [seg[2 * t]!, seg[2 * t + 1]!] };
    const got = await readAct(out);
    for (const t of [3, 21, 28]) expect(Array.from(got.subarray(t * H * d, (t + 1) * H * d))).toEqual(new Array(H * d).fill(0));
    const worst = within(got, attentionRef(qp, kp, vp, T, args), attentionF16Bound(qp, kp, vp, T, args, { k: true, v: true, out: false }), 'fused');
    log('fused views', worst);
    for (const t of [x, s, out]) t.destroy();
  });

  runs('scores rising along the keys: every tile raises the max, so every tile rescales the output', async () => {
    // q = c u for every row, key j = (j / n) 6 u + noise / 4: row t's max grows with each tile.
    const [T, H, d] = [96, 1, 32];
    const u = randn(d, 17).map((x) => x / Math.sqrt(d));
    const noise = randn(T * d, 18);
    const qh = new Float32Array(T * d).map((_, i) => 2 * u[i % d]!);
    const kh = new Float32Array(T * d).map((_, i) => (Math.floor(i / d) / T) * 6 * u[i % d]! + noise[i]! / 4);
    const vh = randn(T * d, 19);
    const seg = new Uint32Array(2 * T).map((_, i) => (i % 2 ? T : 0));
    const [q, k, v] = [qh, kh, vh].map((x, i) => Tensor.from(gpu, x, [T, H, d], 'f32', `x${i}`)) as [Tensor, Tensor, Tensor];
    const s = Tensor.from(gpu, seg, [T, 2], 'u32', 'seg');
    const out = Tensor.empty(gpu, [T, H, d], 'f32', 'out');
    record(gpu, 'attn', (ctx) => blockDiagonalAttention(ctx, out, q, k, v, s, { tokens: T, heads: H, kvHeads: H, headDim: d, keyRows: T, scale: 4, variant: 'subgroupMatrix' }));
    const args: AttnRefArgs = { heads: H, kvHeads: H, d, scale: 4, range: () => [0, T] };
    const worst = within(await readAct(out), attentionRef(qh, kh, vh, T, args), attentionF16Bound(qh, kh, vh, T, args, { k: true, v: true, out: false }), 'rising');
    log('rising scores', worst);
    for (const t of [q, k, v, s, out]) t.destroy();
  });

  runs('is the default once the check passed (same bits as asking for it, not the SIMT kernel\'s)', async () => {
    const byDefault = await causal(37, 11, 4, 2, 32, 'f32', 'f32');
    const asked = await causal(37, 11, 4, 2, 32, 'f32', 'f32', 'subgroupMatrix');
    const simt = await causal(37, 11, 4, 2, 32, 'f32', 'f32', 'simt');
    expect(Array.from(byDefault.got)).toEqual(Array.from(asked.got));
    expect(Array.from(simt.got)).not.toEqual(Array.from(asked.got));
  });

  runs('refuses head_dim that is not a multiple of the fragment, naming the kernel', async () => {
    const d = 12;
    const q = Tensor.empty(gpu, [4, 1, d], 'f32', 'q');
    const s = Tensor.from(gpu, imageSegments([4]), [4, 2], 'u32', 'seg');
    expect(() =>
      record(gpu, 'bad', (ctx) => blockDiagonalAttention(ctx, q, q, q, q, s, { tokens: 4, heads: 1, kvHeads: 1, headDim: d, keyRows: 4, variant: 'subgroupMatrix' })),
    ).toThrow(/attention_prefill_subgroup_matrix.*head_dim 12 is not a multiple/);
    q.destroy();
    s.destroy();
  });
});
