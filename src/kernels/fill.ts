/**
 * Deterministic pseudo-random fill on the GPU: random bits (q4 weights), uniform f32 values, or
 * pairs of uniform f16 values, without sending gigabytes from the CPU. Used by the benchmark's
 * real-shape models and by large-shape tests.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/fill_random.wgsl?raw';

const WG = 256;

export type FillMode = 'bits' | 'f32' | 'f16pair';

export const fillKernel = defineKernel({
  name: 'fill_random',
  source,
  bindings: [{ name: 'out', access: 'write' }],
  uniforms: { n: 'u32', seed: 'u32', scale: 'f32', offset: 'u32' },
  specialize: (k: { mode: FillMode }) => ({ defines: { F32: k.mode === 'f32', F16PAIR: k.mode === 'f16pair' }, overrides: { WG } }),
});

/**
 * Fills the first `words` u32 words of `buffer`: random bits, or values uniform in
 * [-scale, scale] (one f32, or two f16, per word). Same seed, same words.
 */
export function fillRandom(ctx: Ctx, buffer: GPUBuffer, words: number, mode: FillMode, seed: number, scale = 1): void {
  if (words * 4 > buffer.size) throw new KernelError('fill_random', `${words} words exceed the ${buffer.size}-byte buffer`);
  const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
  // One dispatch covers at most max * max workgroups; far beyond any buffer here.
  dispatch(ctx.gpu, ctx.pass, fillKernel, { mode }, {
    buffers: [buffer],
    uniforms: { n: words, seed: seed >>> 0, scale, offset: 0 },
    workgroups: grid(Math.ceil(words / WG), max),
  });
}
