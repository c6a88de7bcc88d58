/**
 * Decode attention with the token's RoPE and KV-cache append folded in (`decodeAttention` with
 * `rope`, the ROPE_KV variants of attention_decode.wgsl) against the unfused pair it replaces:
 * `ropeKvWrite` (rotate q and k in the packed row, append k and v at row pos) then
 * `decodeAttention`. Tolerance 0 with f32 activations: the output and the whole k and v caches
 * must be bit-identical (the same operations in the same order; the unfused kernels are
 * themselves checked against float64 references in rope-kv-write.test.ts and
 * attention.test.ts). With f16 activations the caches are bit-identical and the output within a
 * 2^-6 (see the test: the compiler may skip the q round trip through f16). Shapes: awkward head
 * counts and head_dim (GQA groups 1..4, head_dim 16..128), contexts 1, 2, 255, 256, 257 and
 * past 1000 (one chunk, SINGLE; and past one chunk both split-K with the combine, the new row in
 * the last chunk, and the one pass walking the chunks),
 * Nemo's 32 x 128 heads over 8 kv heads at 3000 keys; an activation-dtype cache and an f16 one;
 * f16 activations where the adapter has shader-f16. Also: rows other than pos untouched, the
 * attention output against float64 for one case, and a check that the variant can fail (a new
 * key left out of the scores is caught).
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import { Tensor, writeBuffer } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { buildRopeTable } from '../../src/kernels/rope.js';
import { ropeInvFreq } from '../../src/kernels/rope-freqs.js';
import { createDecodeScratch, createKvCache, decodeAttention, destroyDecodeScratch, destroyKvCache } from '../../src/kernels/attention.js';
import { ropeKvWrite } from '../../src/kernels/rope-kv-write.js';
import { fromF16, roundF16, toF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';

type Act = 'f32' | 'f16';

async function bits(t: Tensor): Promise<number[]> {
  return Array.from(new Uint32Array((await t.read()).buffer));
}

interface Case {
  H: number;
  KV: number;
  d: number;
  nCtx: number;
  /** decodeAttention's `split` (past one chunk: split-K, or one pass walking the chunks). */
  split?: boolean;
}

/** Runs the folded and the unfused step on identical random caches; returns both results. */
async function both(gpu: Gpu, c: Case, dtype: Act, storage: 'act' | 'f16', seed: number, attnFactor = 1.25) {
  const { H, KV, d, nCtx } = c;
  const pos = nCtx - 1;
  const maxCtx = nCtx + 3;
  const row = randn((H + 2 * KV) * d, seed);
  if (dtype === 'f16') row.forEach((v, i) => (row[i] = roundF16(v)));
  const prior = randn(maxCtx * KV * d, seed + 1);
  const priorV = randn(maxCtx * KV * d, seed + 2);
  const table = buildRopeTable(gpu, ropeInvFreq(d, 1e6), maxCtx);
  const run = async (folded: boolean) => {
    const qkv = Tensor.from(gpu, dtype === 'f16' ? toF16(row) : row, [row.length], dtype, 'qkv');
    const cache = createKvCache(gpu, maxCtx, KV, d, dtype, 'kv', storage);
    const f16 = cache.storage === 'f16';
    writeBuffer(gpu, cache.k.buffer, 0, f16 ? toF16(prior) : prior);
    writeBuffer(gpu, cache.v.buffer, 0, f16 ? toF16(priorV) : priorV);
    const out = Tensor.empty(gpu, [H * d], dtype, 'out');
    const scratch = createDecodeScratch(gpu, maxCtx, H, d);
    record(gpu, folded ? 'folded' : 'unfused', (ctx) => {
      if (folded) decodeAttention(ctx, out, qkv, cache, scratch, { nCtx, heads: H, qOffset: 0, split: c.split, rope: { table, attnFactor } });
      else {
        ropeKvWrite(ctx, qkv, table, cache, { qHeads: H, pos, attnFactor });
        decodeAttention(ctx, out, qkv, cache, scratch, { nCtx, heads: H, qOffset: 0, split: c.split });
      }
    });
    const raw = await out.read();
    const r = { out: await bits(out), outF: dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array), k: await bits(cache.k), v: await bits(cache.v) };
    qkv.destroy();
    out.destroy();
    destroyKvCache(cache);
    destroyDecodeScratch(scratch);
    return r;
  };
  const folded = await run(true);
  const plain = await run(false);
  table.tensor.destroy();
  return { folded, plain, row, prior, priorV };
}

const CASES: Case[] = [
  { H: 1, KV: 1, d: 16, nCtx: 1 },
  { H: 4, KV: 2, d: 32, nCtx: 2 },
  { H: 3, KV: 3, d: 64, nCtx: 255 },
  { H: 8, KV: 2, d: 128, nCtx: 256 },
  { H: 4, KV: 1, d: 32, nCtx: 257, split: true },
  { H: 6, KV: 2, d: 64, nCtx: 1031, split: true },
  { H: 6, KV: 2, d: 64, nCtx: 1031, split: false },
];

describe('decode attention with RoPE and the cache append folded in', async () => {
  const gpu = await getGpu();
  for (const dtype of await activationDtypes()) {
    for (const storage of ['act', 'f16'] as const) {
      if (storage === 'f16' && dtype === 'f16') continue; // the 'act' case
      for (const c of CASES) {
        const what = dtype === 'f32' ? 'bit-identical to' : 'the same cache as, and the output within 2^-6 of,';
        it(`heads ${c.H}/${c.KV} d=${c.d}, ${c.nCtx} keys${c.split === undefined ? '' : c.split ? ', split' : ', one pass'}, ${dtype} activations, ${storage} cache: ${what} rope_kv_write + attention`, async () => {
          const { folded, plain } = await both(gpu, c, dtype, storage, c.H * 1000 + c.d + c.nCtx);
          expect(folded.k).toEqual(plain.k);
          expect(folded.v).toEqual(plain.v);
          if (dtype === 'f32') expect(folded.out).toEqual(plain.out);
          else {
            // f16 activations: the unfused path rounds the rotated q to f16 in memory between its
            // two dispatches; inside one shader the compiler may keep it in f32 (lavapipe folds
            // the f16 -> f32 round trip). That moves each score s by <= 2^-11 |s| (|s| <~ 4 for
            // these unit-normal inputs), each softmax weight by <= ~2^-8 relative, and the output,
            // a convex combination of v rows (|v| <~ 4), by <= ~2^-6 absolute, plus its own f16
            // rounding. Bound: 2^-6 absolute (attention.test.ts allows 2e-2 against float64).
            let worst = 0;
            folded.outF.forEach((g, i) => (worst = Math.max(worst, Math.abs(g - plain.outF[i]!))));
            console.log(`[attention rope_kv] ${c.H}/${c.KV} d=${c.d} n=${c.nCtx} f16: max abs diff ${worst.toExponential(2)} (bound 2^-6)`);
            expect(worst).toBeLessThanOrEqual(2 ** -6);
          }
        });
      }
    }
  }

  // The adapter's default form (split-K on lavapipe, one pass on SwiftShader).
  it('Nemo heads (32 x 128 over 8 kv heads) at 3000 keys, f16 cache: bit-identical', async () => {
    const { folded, plain } = await both(gpu, { H: 32, KV: 8, d: 128, nCtx: 3000 }, 'f32', 'f16', 77, 1);
    expect(folded.out).toEqual(plain.out);
    expect(folded.k).toEqual(plain.k);
    expect(folded.v).toEqual(plain.v);
  });

  it('writes row pos only, and its output matches float64 attention over the rotated token', async () => {
    const c = { H: 2, KV: 1, d: 16, nCtx: 5 };
    const { folded, row, prior, priorV } = await both(gpu, c, 'f32', 'act', 9, 1);
    const { H, KV, d, nCtx } = c;
    const pos = nCtx - 1;
    const w = KV * d;
    const kf = new Float32Array(new Uint32Array(folded.k).buffer);
    const vf = new Float32Array(new Uint32Array(folded.v).buffer);
    // Rows other than pos keep what was written before.
    for (let r = 0; r < nCtx + 3; r++) {
      if (r === pos) continue;
      expect(Array.from(kf.subarray(r * w, (r + 1) * w))).toEqual(Array.from(prior.subarray(r * w, (r + 1) * w)));
      expect(Array.from(vf.subarray(r * w, (r + 1) * w))).toEqual(Array.from(priorV.subarray(r * w, (r + 1) * w)));
    }
    // float64: rotate q and the new k, attend over rows 0..pos.
    const inv = ropeInvFreq(d, 1e6);
    const half = d / 2;
    const rot = (x: ArrayLike<number>, base: number) => {
      const y = new Float64Array(d);
      for (let i = 0; i < half; i++) {
        const [cs, sn] = [Math.cos(pos * inv[i]!), Math.sin(pos * inv[i]!)];
        y[i] = x[base + i]! * cs - x[base + i + half]! * sn;
        y[i + half] = x[base + i + half]! * cs + x[base + i]! * sn;
      }
      return y;
    };
    const kNew = rot(row, H * d);
    for (let i = 0; i < d; i++) expect(Math.abs(kf[pos * w + i]! - kNew[i]!)).toBeLessThan(1e-6);
    for (let h = 0; h < H; h++) {
      const q = rot(row, h * d);
      const key = (j: number, i: number) => (j === pos ? kNew[i]! : prior[j * w + i]!);
      const val = (j: number, i: number) => (j === pos ? row[(H + KV) * d + i]! : priorV[j * w + i]!);
      const s = Array.from({ length: nCtx }, (_, j) => q.reduce((a, qi, i) => a + qi * key(j, i), 0) / Math.sqrt(d));
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < d; i++) {
        const want = e.reduce((a, ej, j) => a + ej * val(j, i), 0) / z;
        // f32 scores and sums over 5 keys of unit-scale values: a few ulps; 1e-5 is generous.
        expect(Math.abs(folded.outF[h * d + i]! - want)).toBeLessThan(1e-5);
      }
    }
  });

  it('can fail: the same step without the new key (context one shorter) differs', async () => {
    const c = { H: 4, KV: 2, d: 32, nCtx: 40 };
    const { folded } = await both(gpu, c, 'f32', 'act', 5);
    const shorter = await both(gpu, { ...c, nCtx: 39 }, 'f32', 'act', 5);
    expect(folded.out).not.toEqual(shorter.plain.out);
  });
});
