/**
 * One shared WebGPU runtime per test page (or per test file in the `dawn` project), the
 * activation dtypes to test on it, and whether this project runs the real-model-shape cases.
 */
import { inject } from 'vitest';
import { Gpu } from '../../src/gpu/device.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Run the real-model-shape kernel cases (Nemo, ViT, lm_head) in this project (default true). */
    realShapes?: boolean;
  }
}

/**
 * Real model shapes run in one project only (vitest.config.ts): they cost minutes on a CPU
 * adapter, and running them on both SwiftShader and lavapipe would only double that. The `dawn`
 * project sets this false and keeps the small awkward shapes, in f32 and f16.
 */
export const realShapes: boolean = inject('realShapes') !== false;

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
