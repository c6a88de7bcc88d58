/**
 * Bench section `q4tune`: the q4 matrix-vector work splits (threads per 4-row block, workgroup
 * size, subgroup or shared-memory reduction, one or two groups per iteration) side by side on Nemo shapes, to pick
 * `defaultQ4MatVecConfig` per adapter (and `q4MatVecConfigFor` per row count). On software adapters: one shape, fewer splits, short runs.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { canUseSubgroups, type Q4MatVecConfig } from '../../src/kernels/q4.js';
import { timeMatVec } from './q4matvec.js';
import { isSoftware } from './timing.js';

export async function run(gpu: Gpu): Promise<object> {
  const soft = isSoftware(gpu);
  const configs: Q4MatVecConfig[] = [];
  for (const wg of soft ? [32, 64, 128] : [64]) configs.push({ wg, tpr: 1, subgroups: false, pairs: false, intcvt: true });
  configs.push({ wg: 64, tpr: 1, subgroups: false, pairs: false, intcvt: false });
  configs.push({ wg: 64, tpr: 1, subgroups: false, pairs: true, intcvt: true });
  // [64, 32] and [128, 32]: the rows-per-workgroup choice of q4MatVecConfigFor (8 or 16 rows).
  const splits: [number, number][] = soft ? [[64, 4], [256, 64]] : [[64, 16], [64, 32], [128, 32], [256, 32], [256, 64], [256, 128]];
  for (const [wg, tpr] of splits) {
    for (const pairs of soft ? [false] : [false, true]) {
      configs.push({ wg, tpr, subgroups: false, pairs, intcvt: soft });
      if (canUseSubgroups(gpu, tpr)) configs.push({ wg, tpr, subgroups: true, pairs, intcvt: soft });
    }
  }
  const shapes: [number, number][] = soft ? [[5120, 4096]] : [[5120, 4096], [5120, 1024], [14336, 5120], [5120, 131072]];
  const q4tune = [];
  for (const [K, N] of shapes) {
    for (const config of configs) {
      const r = await timeMatVec(gpu, K, N, config, soft ? { targetMs: 500 } : {});
      q4tune.push({ shape: r.shape, ...config, ms: r.ms, GBps: r.GBps, fractionOfCopy: r.fractionOfCopy });
    }
  }
  return { q4tune };
}
