/**
 * Bias add in place, `x[t, n] += b[n]` over rows. Activations f32 (or f16 with shader-f16);
 * the bias f32 or f16 (read as packed u32 pairs, so it works on f32-only devices).
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/bias_add.wgsl?raw';

const WG = 256;

export const biasAddKernel = defineKernel({
  name: 'bias_add',
  source,
  bindings: [
    { name: 'x', access: 'write' },
    { name: 'b', access: 'read' },
  ],
  uniforms: { N: 'u32', total: 'u32' },
  specialize: (k: { act: 'f32' | 'f16'; bias: 'f32' | 'f16' }) => ({
    defines: { F16: k.act === 'f16', WEIGHT_F16: k.bias === 'f16' },
    overrides: { WG },
  }),
});

/** x [T, N] += b [N] (broadcast over T rows). */
export function biasAddInPlace(ctx: Ctx, x: Tensor, b: Tensor): void {
  const fail = (msg: string): never => {
    throw new KernelError('bias_add', `${x.label} += ${b.label}: ${msg}`);
  };
  const N = x.shape[x.shape.length - 1] ?? 0;
  if (x.dtype !== 'f32' && x.dtype !== 'f16') fail(`activation dtype ${x.dtype}`);
  if (b.numel !== N || N === 0 || (b.dtype !== 'f32' && b.dtype !== 'f16')) fail(`bias [${b.shape}] ${b.dtype} must be [${N}] f32/f16`);
  const total = x.numel;
  dispatch(ctx.gpu, ctx.pass, biasAddKernel, { act: x.dtype as 'f32' | 'f16', bias: b.dtype as 'f32' | 'f16' }, {
    buffers: [x.buffer, b.buffer], // [T, N] act (in place), [N] f32 | f16-as-u32
    uniforms: { N, total },
    workgroups: grid(Math.ceil(total / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
