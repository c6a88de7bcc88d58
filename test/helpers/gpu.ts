/** One shared WebGPU runtime per test page, plus an f32-only one on adapters that have f16. */
import { Gpu } from '../../src/gpu/device.js';

let gpu: Promise<Gpu> | undefined;

export function getGpu(): Promise<Gpu> {
  gpu ??= Gpu.create();
  return gpu;
}

/** The activation dtypes to test on this adapter: always f32, f16 when it has shader-f16. */
export async function activationDtypes(): Promise<('f32' | 'f16')[]> {
  const g = await getGpu();
  return g.features.f16 ? ['f32', 'f16'] : ['f32'];
}
