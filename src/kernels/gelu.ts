/**
 * Exact (erf) GELU in place, `x = 0.5 x (1 + erf(x / sqrt 2))` as in PyTorch's default
 * `nn.GELU()` (the projector's activation). WGSL has no erf: the shader uses the Numerical
 * Recipes erfc fit (fractional error < 1.2e-7) and evaluates the negative tail as x * erfc / 2
 * so it does not cancel; measured against float64 over [-10, 10] in test/kernels/elementwise.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/gelu.wgsl?raw';

const WG = 256;

export const geluKernel = defineKernel({
  name: 'gelu',
  source,
  bindings: [{ name: 'x', access: 'write' }],
  uniforms: { n: 'u32' },
  specialize: (k: { dtype: 'f32' | 'f16' }) => ({ defines: { F16: k.dtype === 'f16' }, overrides: { WG } }),
});

/** x [n] = gelu(x) in place. */
export function geluInPlace(ctx: Ctx, x: Tensor, n = x.numel): void {
  if (x.dtype !== 'f32' && x.dtype !== 'f16') throw new KernelError('gelu', `${x.label}: dtype ${x.dtype} unsupported`);
  if (n > x.numel) throw new KernelError('gelu', `n=${n} exceeds ${x.label} [${x.shape}]`);
  dispatch(ctx.gpu, ctx.pass, geluKernel, { dtype: x.dtype }, {
    buffers: [x.buffer],
    uniforms: { n },
    workgroups: grid(Math.ceil(n / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
