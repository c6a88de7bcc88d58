/**
 * rope_kv_write (`ropeKvWrite`, the decode step's RoPE + KV-cache append in one dispatch) against
 * the unfused kernels it replaces, `ropeInPlace` over the q and k heads then `kvWrite` of k and v:
 * the rotated row and the cache rows must be bit-identical (tolerance 0: the same operations in
 * the same order; the unfused kernels are themselves checked against float64 references in
 * rope.test.ts and attention.test.ts), at awkward shapes, the real Nemo shape (32 q / 8 kv heads
 * x 128) and positions on both sides of the table's low/high split, for an activation-dtype and
 * an f16 cache. Rows other than `pos` stay untouched. One float64 check of a rotated q pair ties
 * it to the math directly.
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import { Tensor, writeBuffer } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { buildRopeTable, ropeInPlace } from '../../src/kernels/rope.js';
import { ropeInvFreq } from '../../src/kernels/rope-freqs.js';
import { createKvCache, destroyKvCache, kvWrite, type KvCache } from '../../src/kernels/attention.js';
import { ropeKvWrite } from '../../src/kernels/rope-kv-write.js';
import { fromF16, roundF16, toF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';

type Act = 'f32' | 'f16';
const MAX_POS = 1024; // table split: positions < 256 use one low row, larger ones combine two

async function bits(t: Tensor): Promise<number[]> {
  return Array.from(new Uint32Array((await t.read()).buffer));
}

function cacheFor(gpu: Gpu, KV: number, d: number, dtype: Act, storage: 'act' | 'f16'): KvCache {
  const c = createKvCache(gpu, 8 + MAX_POS, KV, d, dtype, 'kv', storage);
  // A sentinel in every row, so a write to the wrong row shows.
  const n = c.k.numel;
  const fill = c.storage === 'f16' ? new Uint16Array(n).fill(0x3c00) : new Float32Array(n).fill(7);
  writeBuffer(gpu, c.k.buffer, 0, fill);
  writeBuffer(gpu, c.v.buffer, 0, fill);
  return c;
}

async function both(gpu: Gpu, H: number, KV: number, d: number, pos: number, dtype: Act, storage: 'act' | 'f16', seed: number) {
  const row = randn((H + 2 * KV) * d, seed);
  if (dtype === 'f16') row.forEach((v, i) => (row[i] = roundF16(v)));
  const table = buildRopeTable(gpu, ropeInvFreq(d, 1e6), MAX_POS);
  const attnFactor = 1.25;
  const run = async (fused: boolean) => {
    const x = Tensor.from(gpu, dtype === 'f16' ? toF16(row) : row, [row.length], dtype, 'qkv');
    const cache = cacheFor(gpu, KV, d, dtype, storage);
    record(gpu, fused ? 'fused' : 'unfused', (ctx) => {
      if (fused) ropeKvWrite(ctx, x, table, cache, { qHeads: H, pos, attnFactor });
      else {
        ropeInPlace(ctx, x, table, { tokens: 1, heads: H + KV, pos0: pos, attnFactor });
        kvWrite(ctx, cache, x, x, { tokens: 1, pos0: pos, kView: { offset: H * d }, vView: { offset: (H + KV) * d } });
      }
    });
    const out = { x: await bits(x), k: await bits(cache.k), v: await bits(cache.v), xf: dtype === 'f16' ? fromF16((await x.read()) as Uint16Array) : ((await x.read()) as Float32Array) };
    x.destroy();
    destroyKvCache(cache);
    return out;
  };
  const fused = await run(true);
  const plain = await run(false);
  table.tensor.destroy();
  return { fused, plain, row };
}

describe('rope + kv write in one dispatch', async () => {
  const gpu = await getGpu();
  for (const dtype of await activationDtypes()) {
    for (const storage of ['act', 'f16'] as const) {
      if (storage === 'f16' && dtype === 'f16') continue; // f16 storage under f16 activations is the 'act' case
      it.each([
        [3, 1, 16, 0],
        [6, 2, 8, 5],
        [5, 5, 12, 300], // one kv head per q head, head_dim 12 (half 6), past the low table
        [32, 8, 128, 1023], // Nemo heads at the last position of the table
      ] as const)(`heads %i/%i d=%i pos %i, ${dtype} activations, ${storage} cache: bit-identical to rope + kv_write`, async (H, KV, d, pos) => {
        const { fused, plain } = await both(gpu, H, KV, d, pos, dtype, storage, H * 100 + d + pos);
        expect(fused.x).toEqual(plain.x);
        expect(fused.k).toEqual(plain.k);
        expect(fused.v).toEqual(plain.v);
      });
    }
  }

  it('rotates a q pair as the float64 formula says, and touches only the row at pos', async () => {
    const [H, KV, d, pos] = [2, 1, 8, 300];
    const { fused, row } = await both(gpu, H, KV, d, pos, 'f32', 'act', 42);
    const inv = ropeInvFreq(d, 1e6);
    const a = pos * inv[1]!;
    const [x1, x2] = [row[1]!, row[1 + d / 2]!];
    const c = 1.25 * Math.cos(a);
    const s = 1.25 * Math.sin(a);
    // Table entries are float64 (cos, sin) rounded to f32 and combined by angle addition in f32:
    // a few f32 ulps of |x| (|x| < 6 for these normals).
    expect(Math.abs(fused.xf[1]! - (x1 * c - x2 * s))).toBeLessThan(1e-5);
    expect(Math.abs(fused.xf[1 + d / 2]! - (x2 * c + x1 * s))).toBeLessThan(1e-5);
    const rowWords = KV * d;
    const k = new Float32Array(Uint32Array.from(fused.k).buffer);
    expect(Array.from(k.subarray(pos * rowWords, (pos + 1) * rowWords))).toEqual(Array.from(fused.xf.subarray(H * d, (H + KV) * d)));
    expect(k[(pos - 1) * rowWords]).toBe(7);
    expect(k[(pos + 1) * rowWords]).toBe(7);
  });

  it('rejects a position past the cache or the table, and a short row', async () => {
    const table = buildRopeTable(gpu, ropeInvFreq(16, 1e6), 64);
    const cache = createKvCache(gpu, 32, 1, 16, 'f32');
    const x = Tensor.empty(gpu, [4 * 16], 'f32', 'qkv');
    expect(() => record(gpu, 'bad', (ctx) => ropeKvWrite(ctx, x, table, cache, { qHeads: 2, pos: 32 }))).toThrow(/rope_kv_write.*position 32/);
    expect(() => record(gpu, 'bad', (ctx) => ropeKvWrite(ctx, x, table, cache, { qHeads: 3, pos: 0 }))).toThrow(/rope_kv_write.*shorter/);
    gpu.check();
    x.destroy();
    destroyKvCache(cache);
    table.tensor.destroy();
  });
});
