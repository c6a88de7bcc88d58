/**
 * im2col for the patch embedding: a normalised CHW image [C, H, W] (H, W multiples of the patch
 * size p) becomes patch rows [(H/p) * (W/p), C * p * p], patches row-major over the grid and
 * each row in PyTorch conv weight order (c, ky, kx). The conv (stride p, no bias) is then
 * `matmul(patches, convWeight viewed as [hidden, C * p * p])`.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/im2col.wgsl?raw';

const WG = 256;

export const im2colKernel = defineKernel({
  name: 'im2col',
  source,
  bindings: [
    { name: 'img', access: 'read' },
    { name: 'out', access: 'write' },
  ],
  uniforms: { C: 'u32', H: 'u32', W: 'u32', p: 'u32', cols: 'u32', total: 'u32' },
  specialize: (k: { dtype: 'f32' | 'f16' }) => ({ defines: { F16: k.dtype === 'f16' }, overrides: { WG } }),
});

/** Shape of the patch-row matrix for an image [C, H, W] and patch size p. */
export function im2colShape(imgShape: readonly number[], p: number): [number, number] {
  const [C, H, W] = imgShape as [number, number, number];
  return [(H / p) * (W / p), C * p * p];
}

/** out [(H/p) * (W/p), C * p * p] = patches of img [C, H, W]; same activation dtype. */
export function im2col(ctx: Ctx, img: Tensor, out: Tensor, p: number): void {
  const fail = (msg: string): never => {
    throw new KernelError('im2col', `${img.label} -> ${out.label}: ${msg}`);
  };
  if (img.shape.length !== 3) fail(`image must be [C, H, W], got [${img.shape}]`);
  const [C, H, W] = img.shape as [number, number, number];
  if (!Number.isInteger(p) || p < 1 || H % p || W % p) fail(`H=${H}, W=${W} are not multiples of the patch ${p}`);
  if (img.dtype !== out.dtype || (img.dtype !== 'f32' && img.dtype !== 'f16')) fail(`dtypes ${img.dtype} -> ${out.dtype}`);
  const [rows, cols] = im2colShape(img.shape, p);
  if (out.shape.length !== 2 || out.shape[0] !== rows || out.shape[1] !== cols) fail(`out must be [${rows}, ${cols}], got [${out.shape}]`);
  const total = rows * cols;
  dispatch(ctx.gpu, ctx.pass, im2colKernel, { dtype: img.dtype as 'f32' | 'f16' }, {
    buffers: [img.buffer, out.buffer], // [C, H, W] act -> [rows * cols, C * p * p] act
    uniforms: { C, H, W, p, cols: W / p, total },
    workgroups: grid(Math.ceil(total / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
