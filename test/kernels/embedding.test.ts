import { describe, expect, it } from 'vitest';
import {
  checkTokenIds,
  destroyEmbeddingTable,
  embed,
  uploadEmbeddingTable,
  type EmbeddingTable,
  type HostTable,
} from '../../src/kernels/embedding.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor, createBuffer, writeBuffer } from '../../src/gpu/tensor.js';
import { KernelError } from '../../src/errors.js';
import { quantizeQ4, type Q4Matrix } from '../../src/quant/q4.js';
import { fromF16, toF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu, realShapes } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { expectClose } from '../helpers/close.js';
import { embeddingRef } from './ref/embedding.js';

// Every path is a pure gather: f32 copies, f16 -> f32 widens exactly, and q4's (q - 8) * scale
// (a 4-bit integer times an f16 scale) is exact in f32. So f32 output is compared with atol 0;
// f16 output rounds once to half (rtol 2^-11).
const EXACT = { atol: 0, rtol: 0 };
const F16_OUT = { atol: 0, rtol: 2 ** -11 };

function hostTable(dtype: 'q4' | 'f16' | 'f32', rows: number, cols: number, seed: number): HostTable {
  const w = randn(rows * cols, seed);
  if (dtype === 'q4') return { dtype, q: quantizeQ4(w, rows, cols) };
  if (dtype === 'f16') return { dtype, rows, cols, data: toF16(w) };
  return { dtype, rows, cols, data: w };
}

async function gather(table: EmbeddingTable, ids: Uint32Array, act: 'f32' | 'f16'): Promise<Float32Array> {
  const gpu = await getGpu();
  const idsT = Tensor.from(gpu, ids, [ids.length], 'u32', 'ids');
  // Pre-filled with a sentinel so a row no dispatch writes shows up as 77, not as a stale zero.
  const n = ids.length * table.cols;
  const out =
    act === 'f16'
      ? Tensor.from(gpu, toF16(new Float32Array(n).fill(77)), [ids.length, table.cols], 'f16', 'out')
      : Tensor.from(gpu, new Float32Array(n).fill(77), [ids.length, table.cols], 'f32', 'out');
  record(gpu, 'embedding', (ctx) => embed(ctx, table, idsT, out));
  const raw = await out.read();
  await gpu.sync();
  idsT.destroy();
  out.destroy();
  return act === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
}

describe('embedding gather', async () => {
  const acts = await activationDtypes();
  for (const act of acts) {
    for (const dtype of ['q4', 'f16', 'f32'] as const) {
      // q4 needs cols % 32 == 0; f16/f32 use an odd width so rows straddle u32 words.
      const cols = dtype === 'q4' ? 96 : 67;
      const rows = 1000;
      it(`${dtype} table [${rows}, ${cols}] -> ${act}, one part and a forced split`, async () => {
        const gpu = await getGpu();
        const host = hostTable(dtype, rows, cols, 11);
        const ids = Uint32Array.from([0, 999, 1, 500, 500, 137, 998, 0, 263, 264, 265, 526, 527, 789]);
        checkTokenIds(ids, rows);
        const want = embeddingRef(host, ids);
        const tol = act === 'f16' ? F16_OUT : EXACT;

        const whole = uploadEmbeddingTable(gpu, host, 'emb');
        expect(whole.parts.length).toBe(1);
        expectClose(await gather(whole, ids, act), want, tol, 'one part');
        destroyEmbeddingTable(whole);

        // A binding limit of ~263 rows: 4 parts (263, 263, 263, 211); ids hit every part and
        // both sides of each boundary (262/263, 525/526, 788/789).
        const rowBytes = dtype === 'q4' ? cols / 2 : dtype === 'f16' ? cols * 2 : cols * 4;
        const split = uploadEmbeddingTable(gpu, host, 'emb', 263 * rowBytes + 3);
        expect(split.parts.map((p) => p.rows)).toEqual([263, 263, 263, 211]);
        const ids2 = Uint32Array.from([262, 263, 525, 526, 788, 789, 0, 999, 262, 400, 700, 900]);
        expectClose(await gather(split, ids2, act), embeddingRef(host, ids2), tol, 'split');
        destroyEmbeddingTable(split);
      });
    }
  }

  it('out-of-range ids on the GPU give zero rows (every part), host ids are rejected', async () => {
    const gpu = await getGpu();
    const host = hostTable('f32', 40, 33, 5);
    const table = uploadEmbeddingTable(gpu, host, 'emb', 10 * 33 * 4); // 4 parts of 10 rows
    expect(table.parts.length).toBe(4);
    const ids = Uint32Array.from([3, 40, 39, 0xffffffff, 41, 10]);
    const got = await gather(table, ids, 'f32');
    const want = embeddingRef(host, ids); // zero rows for 40, 0xffffffff, 41
    expectClose(got, want, EXACT);
    expect(Array.from(got.subarray(33, 66)).every((v) => v === 0)).toBe(true);
    destroyEmbeddingTable(table);

    expect(() => checkTokenIds([1, 2, 40], 40)).toThrow(KernelError);
    expect(() => checkTokenIds([-1], 40)).toThrow(/outside the vocabulary/);
    expect(() => checkTokenIds([1.5], 40)).toThrow(KernelError);
    expect(() => checkTokenIds([0, 39], 40)).not.toThrow();
  });

  it('rejects bad shapes and parts', async () => {
    const gpu = await getGpu();
    const table = uploadEmbeddingTable(gpu, hostTable('f32', 8, 4, 1), 'emb');
    const ids = Tensor.from(gpu, Uint32Array.from([1, 2]), [2], 'u32', 'ids');
    const small = Tensor.empty(gpu, [1, 4], 'f32', 'small');
    const ok = Tensor.empty(gpu, [2, 4], 'f32', 'ok');
    const gap: EmbeddingTable = { ...table, parts: [{ ...table.parts[0]!, rowStart: 1 }] };
    record(gpu, 'bad', (ctx) => {
      expect(() => embed(ctx, table, ids, small)).toThrow(/smaller than/);
      expect(() => embed(ctx, gap, ids, ok)).toThrow(/cover/);
      expect(() => embed(ctx, table, ok, ok)).toThrow(/u32/);
    });
    await gpu.sync();
    for (const t of [ids, small, ok]) t.destroy();
    destroyEmbeddingTable(table);
  });

  it.runIf(realShapes)('real shape: gather from a 131072 x 5120 q4 table', async () => {
    const gpu = await getGpu();
    const rows = 131072;
    const cols = 5120;
    // The full table is allocated (335 MB qweight + 42 MB scales, one binding each); only the rows
    // gathered are written, from a small q4 matrix, so every other row is zero and a wrong row
    // offset reads zeros (or another row), which the comparison catches.
    const picked = [0, 1, 65535, 65536, 100000, 131071];
    const small: Q4Matrix = quantizeQ4(randn(picked.length * cols, 3), picked.length, cols);
    const wWords = cols / 8;
    const sHalves = cols / 32;
    const qweight = createBuffer(gpu, (rows * cols) / 2, 'lm.qweight');
    const scales = createBuffer(gpu, rows * sHalves * 2, 'lm.scales');
    picked.forEach((r, i) => {
      writeBuffer(gpu, qweight, r * wWords * 4, small.qweight.subarray(i * wWords, (i + 1) * wWords));
      writeBuffer(gpu, scales, r * sHalves * 2, small.scales.subarray(i * sHalves, (i + 1) * sHalves));
    });
    const table: EmbeddingTable = { dtype: 'q4', rows, cols, parts: [{ rowStart: 0, rows, data: qweight, scales }] };
    const order = [5, 0, 3, 2, 4, 1, 3]; // indices into `picked`, with a repeat
    const ids = Uint32Array.from(order, (i) => picked[i]!);
    const got = await gather(table, ids, 'f32');
    const want = embeddingRef({ dtype: 'q4', q: small }, Uint32Array.from(order));
    expectClose(got, want, EXACT);
    expect(want.some((v) => v !== 0)).toBe(true);
    destroyEmbeddingTable(table);
  });
});
