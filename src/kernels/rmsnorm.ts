/**
 * RMSNorm over the last dimension: `y = x / sqrt(mean(x^2) + eps) * w`, statistics in f32.
 * Activations f32 (or f16 with shader-f16); the weight f32 or f16 (read as packed u32 pairs, so
 * f16 weights work on f32-only devices).
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/rmsnorm.wgsl?raw';

const WG = 256;

export const rmsnormKernel = defineKernel({
  name: 'rmsnorm',
  source,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'w', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { rows: 'u32', cols: 'u32', eps: 'f32' },
  specialize: (k: { act: 'f32' | 'f16'; weight: 'f32' | 'f16' }) => ({
    defines: { F16: k.act === 'f16', WEIGHT_F16: k.weight === 'f16' },
    overrides: { WG },
  }),
});

/** y [rows, cols] = rmsnorm(x [rows, cols]) * w [cols]; x and y distinct, same activation dtype. */
export function rmsnorm(ctx: Ctx, x: Tensor, w: Tensor, y: Tensor, eps: number): void {
  const fail = (msg: string): never => {
    throw new KernelError('rmsnorm', `${x.label} -> ${y.label}: ${msg}`);
  };
  const cols = x.shape[x.shape.length - 1] ?? 0;
  if (cols === 0) fail(`empty row in [${x.shape}]`);
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) fail(`dtypes ${x.dtype} -> ${y.dtype}`);
  if (w.numel !== cols || (w.dtype !== 'f32' && w.dtype !== 'f16')) fail(`weight [${w.shape}] ${w.dtype} must be [${cols}] f32/f16`);
  if (y.numel !== x.numel) fail(`y [${y.shape}] differs from x [${x.shape}]`);
  if (x.buffer === y.buffer) fail('x and y must be different buffers (WebGPU forbids read/write aliasing)');
  if (!(eps >= 0)) fail(`eps ${eps}`);
  const rows = x.numel / cols;
  dispatch(ctx.gpu, ctx.pass, rmsnormKernel, { act: x.dtype as 'f32' | 'f16', weight: w.dtype as 'f32' | 'f16' }, {
    buffers: [x.buffer, w.buffer, y.buffer], // [rows, cols] act, [cols] f32 | f16-as-u32, [rows, cols] act
    uniforms: { rows, cols, eps },
    workgroups: grid(rows, ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
