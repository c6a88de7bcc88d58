/**
 * Bench section `q4check`: correctness of every q4 matrix-vector work split on this adapter
 * (for machines where the Vitest suite cannot run, e.g. a GPU server driven by bench/node.ts):
 * sampled rows of a synthetic 5120 -> 4096 weight against the float64 CPU dot product, as
 * err / (2^-24 sqrt(K) mag) (the test suite fails above 4; see test/kernels/q4.test.ts).
 */
import type { Gpu } from '../../src/gpu/device.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { canUseSubgroups, destroyQ4, q4MatVec, type Q4MatVecConfig } from '../../src/kernels/q4.js';
import { U32, synthRowDot, uploadSynthQ4 } from '../../test/kernels/ref/q4.js';

export async function run(gpu: Gpu): Promise<object> {
  const K = 5120;
  const N = 4099; // not a multiple of any block
  const seed = 21;
  const w = uploadSynthQ4(gpu, N, K, seed, 'check.q4', 3 * 2 ** 20); // 3 MiB parts: 3 parts
  const xv = Float32Array.from({ length: K }, (_, i) => Math.sin(i * 0.37) + 0.1);
  const x = Tensor.from(gpu, xv, [K], 'f32', 'check.x');
  const y = Tensor.empty(gpu, [N], 'f32', 'check.y');
  const rows = Array.from({ length: 48 }, (_, i) => Math.floor((i * (N - 1)) / 47));
  const ref = rows.map((r) => synthRowDot(K, seed, r, xv));
  const configs: Q4MatVecConfig[] = [
    { wg: 64, tpr: 1, subgroups: false, pairs: false, intcvt: true },
    { wg: 64, tpr: 1, subgroups: false, pairs: true, intcvt: false },
  ];
  for (const [wg, tpr] of [[64, 4], [128, 32], [256, 64]] as const) {
    configs.push({ wg, tpr, subgroups: false, pairs: true, intcvt: tpr === 4 });
    if (canUseSubgroups(gpu, tpr)) configs.push({ wg, tpr, subgroups: true, pairs: tpr !== 64, intcvt: tpr === 64 });
  }
  const q4check = [];
  try {
    for (const config of configs) {
      record(gpu, 'q4check', (ctx) => q4MatVec(ctx, w, x, y, { config }));
      const got = (await y.read()) as Float32Array;
      let worst = 0;
      rows.forEach((r, i) => {
        const e = Math.abs(got[r]! - ref[i]!.y) / (U32 * Math.sqrt(K) * ref[i]!.mag);
        worst = Math.max(worst, Number.isNaN(e) ? Infinity : e);
      });
      q4check.push({ ...config, parts: w.parts.length, worstErr: worst, ok: worst <= 4 });
    }
  } finally {
    destroyQ4(w);
    x.destroy();
    y.destroy();
  }
  return { q4check };
}
