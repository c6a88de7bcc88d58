/** Plain buffer copy through a compute kernel: the bandwidth yardstick of the benchmark. */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/copy.wgsl?raw';

const WG = 256;

export const copyKernel = defineKernel({
  name: 'copy',
  source,
  bindings: [
    { name: 'src', access: 'read' },
    { name: 'dst', access: 'write' },
  ],
  uniforms: { n: 'u32' },
  specialize: (_: Record<string, never>) => ({ overrides: { WG } }),
});

/** Copies `bytes` (a multiple of 16) from src to dst. */
export function copyBytes(ctx: Ctx, src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
  if (bytes % 16) throw new KernelError('copy', `byte count ${bytes} is not a multiple of 16`);
  const n = bytes / 16;
  dispatch(ctx.gpu, ctx.pass, copyKernel, {}, {
    buffers: [src, dst],
    uniforms: { n },
    workgroups: grid(Math.ceil(n / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
