/** Bench section `copy`: the bandwidth yardstick every other section is compared with. */
import type { Gpu } from '../../src/gpu/device.js';
import { copyGBps, timingMethod } from './timing.js';

export async function run(gpu: Gpu): Promise<object> {
  const c = await copyGBps(gpu);
  return { copyGBps: c.GBps, copy: { bytes: c.bytes, ms: c.ms, iters: c.iters, samples: c.samples, timing: timingMethod(gpu) } };
}
