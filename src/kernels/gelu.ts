/**
 * Exact (erf) GELU in place, `x = 0.5 x (1 + erf(x / sqrt 2))` as in PyTorch's default
 * `nn.GELU()` (the projector's activation). WGSL has no erf: the shader uses the Numerical
 * Recipes erfc fit (fractional error < 1.2e-7) and evaluates the negative tail as x * erfc / 2
 * so it does not cancel. Measured against float64 on [-10, 10] (SwiftShader): relative error
 * <= 3.8e-7 for x >= 0, <= 1.7e-6 for x >= -5 and <= 6.2e-6 down to -10 (the exp argument
 * -x^2/2 carries its f32 rounding), absolute error <= 3.8e-7 everywhere (half an f32 ulp at
 * 10); see test/kernels/elementwise for the bound that is asserted.
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
    buffers: [x.buffer], // [n] act, in place
    uniforms: { n },
    workgroups: grid(Math.ceil(n / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
