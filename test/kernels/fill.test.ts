/** fill_random: determinism, value ranges, and that different seeds give different words. */
import { describe, expect, it } from 'vitest';
import { fillRandom } from '../../src/kernels/fill.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { fromF16 } from '../../src/util/f16.js';
import { getGpu } from '../helpers/gpu.js';

async function filled(words: number, mode: 'bits' | 'f32' | 'f16pair', seed: number, scale = 1): Promise<Uint32Array> {
  const gpu = await getGpu();
  const t = Tensor.empty(gpu, [words], 'u32', 'fill');
  record(gpu, 'fill', (ctx) => fillRandom(ctx, t.buffer, words, mode, seed, scale));
  const out = (await t.read()) as Uint32Array;
  t.destroy();
  return out;
}

describe('fill_random', () => {
  it('is deterministic per seed and spreads bits evenly', async () => {
    const a = await filled(70001, 'bits', 1);
    expect(await filled(70001, 'bits', 1)).toEqual(a);
    const b = await filled(70001, 'bits', 2);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    expect(same).toBeLessThan(10);
    // Each nibble value should appear ~1/16 of the time (q4 weights use nibbles).
    const counts = new Array(16).fill(0);
    for (const w of a) for (let j = 0; j < 8; j++) counts[(w >>> (4 * j)) & 15]++;
    const expected = (a.length * 8) / 16;
    for (const c of counts) expect(Math.abs(c - expected) / expected).toBeLessThan(0.03);
  });

  it('gives f32 and f16 values inside [-scale, scale] with a near-zero mean', async () => {
    const f = new Float32Array((await filled(10000, 'f32', 3, 0.5)).buffer);
    const h = fromF16(new Uint16Array((await filled(10000, 'f16pair', 3, 0.25)).buffer));
    for (const [v, s] of [[f, 0.5], [h, 0.25]] as const) {
      let mean = 0;
      for (const x of v) {
        expect(Math.abs(x)).toBeLessThanOrEqual(s);
        mean += x;
      }
      mean /= v.length;
      expect(Math.abs(mean)).toBeLessThan(0.02 * s);
      expect(Math.max(...v)).toBeGreaterThan(0.9 * s);
    }
  });
});
