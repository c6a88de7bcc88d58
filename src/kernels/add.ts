/** Residual add in place (`x += y`), f32 or f16 activations. */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/add.wgsl?raw';

const WG = 256;

export const addKernel = defineKernel({
  name: 'add',
  source,
  bindings: [
    { name: 'x', access: 'write' },
    { name: 'y', access: 'read' },
  ],
  uniforms: { n: 'u32' },
  specialize: (k: { dtype: 'f32' | 'f16' }) => ({ defines: { F16: k.dtype === 'f16' }, overrides: { WG } }),
});

/** x [n] += y [n]; both the same activation dtype. */
export function addInPlace(ctx: Ctx, x: Tensor, y: Tensor, n = x.numel): void {
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) {
    throw new KernelError('add', `dtypes ${x.dtype} += ${y.dtype} unsupported`);
  }
  if (n > x.numel || n > y.numel) throw new KernelError('add', `n=${n} exceeds [${x.shape}] or [${y.shape}]`);
  dispatch(ctx.gpu, ctx.pass, addKernel, { dtype: x.dtype }, {
    buffers: [x.buffer, y.buffer],
    uniforms: { n },
    workgroups: grid(Math.ceil(n / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
