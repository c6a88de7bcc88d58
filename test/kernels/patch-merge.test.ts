/**
 * patch_merge (mistral3 2x2 patch merger gather) against a CPU reference written straight from
 * the fixture README's formula (torch unfold semantics), independent of `mergeTable`:
 * several images concatenated, odd grids (last row/column dropped), a grid with a single merged
 * row, and channel counts that are not multiples of the 256-wide workgroup. The kernel only
 * moves values, so the tolerance is zero in f32 and in f16 (the f16 inputs are already halves).
 */
import { describe, expect, it } from 'vitest';
import { mergeTable, mergedCount, mergedGrid, patchMerge, type PatchGrid } from '../../src/kernels/patch-merge.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { fromF16, toF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { expectClose } from '../helpers/close.js';

/** Reference: per image view x as [D, h, w], take 2x2 blocks row-major, v[c*4 + ki*2 + kj]. */
function mergeRef(x: Float32Array, D: number, grids: readonly PatchGrid[]): Float32Array {
  const out: number[] = [];
  let start = 0;
  for (const { rows: h, cols: w } of grids) {
    for (let bi = 0; bi + 1 < h; bi += 2) {
      for (let bj = 0; bj + 1 < w; bj += 2) {
        for (let c = 0; c < D; c++) {
          for (let ki = 0; ki < 2; ki++) for (let kj = 0; kj < 2; kj++) out.push(x[(start + (bi + ki) * w + (bj + kj)) * D + c]!);
        }
      }
    }
    start += h * w;
  }
  return Float32Array.from(out);
}

const CASES: { name: string; D: number; grids: PatchGrid[] }[] = [
  { name: 'one odd 5x7 image', D: 64, grids: [{ rows: 5, cols: 7 }] },
  { name: 'three images, odd and even, D=67', D: 67, grids: [{ rows: 8, cols: 4 }, { rows: 3, cols: 9 }, { rows: 4, cols: 16 }] },
  { name: 'a 2x3 and a 7x2 image, D=300', D: 300, grids: [{ rows: 2, cols: 3 }, { rows: 7, cols: 2 }] },
];

describe('patch_merge', async () => {
  it('mergedGrid floors odd grids', () => {
    expect(mergedGrid({ rows: 5, cols: 7 })).toEqual({ rows: 2, cols: 3 });
    expect(mergedCount([{ rows: 5, cols: 7 }, { rows: 1, cols: 9 }])).toBe(6);
  });

  for (const dtype of await activationDtypes()) {
    for (const c of CASES) {
      it(`${c.name}, ${dtype}`, async () => {
        const gpu = await getGpu();
        const P = c.grids.reduce((a, g) => a + g.rows * g.cols, 0);
        const M = mergedCount(c.grids);
        let host = randn(P * c.D, 7 + c.D);
        if (dtype === 'f16') host = fromF16(toF16(host)); // make the inputs exact halves
        const x = Tensor.from(gpu, dtype === 'f16' ? toF16(host) : host, [P, c.D], dtype, 'x');
        const table = Tensor.from(gpu, mergeTable(c.grids), [M, 2], 'u32', 'table');
        // One spare row past M, pre-filled, to catch writes beyond the output.
        const y = Tensor.from(gpu, dtype === 'f16' ? toF16(new Float32Array((M + 1) * 4 * c.D).fill(9)) : new Float32Array((M + 1) * 4 * c.D).fill(9), [M + 1, 4 * c.D], dtype, 'y');
        record(gpu, 'patch_merge', (ctx) => patchMerge(ctx, x, table, y, { patches: P, merged: M }));
        const raw = await y.read();
        const got = dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
        const want = mergeRef(host, c.D, c.grids);
        expect(want.length).toBe(M * 4 * c.D);
        // A gather: every value must arrive unchanged.
        expectClose(got.subarray(0, M * 4 * c.D), want, { atol: 0, rtol: 0 }, c.name);
        expect(Array.from(got.subarray(M * 4 * c.D)).every((v) => v === 9)).toBe(true);
        x.destroy();
        table.destroy();
        y.destroy();
      });
    }
  }
});
