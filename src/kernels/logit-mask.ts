/**
 * Grammar-constrained decoding on the GPU: the allowed-token bitmask of this step (from
 * `src/grammar`, 16 KiB for a 131072-token vocabulary) is written to `allowed` and tokens outside
 * it get the lowest finite logit before sampling. No CPU pass over the logits.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/logit_mask.wgsl?raw';

const WG = 256;

export const logitMaskKernel = defineKernel({
  name: 'logit_mask',
  source,
  bindings: [
    { name: 'logits', access: 'write' },
    { name: 'allowed', access: 'read' },
  ],
  uniforms: { V: 'u32' },
  specialize: (k: { act: 'f32' | 'f16' }) => ({ defines: { F16: k.act === 'f16' }, overrides: { WG } }),
});

/** logits [V] (f32 or f16) masked in place by allowed [ceil(V / 32)] u32. */
export function maskLogits(ctx: Ctx, logits: Tensor, allowed: Tensor, V = logits.numel): void {
  if (logits.dtype !== 'f32' && logits.dtype !== 'f16') throw new KernelError('logit_mask', `logits dtype ${logits.dtype} unsupported`);
  if (allowed.dtype !== 'u32') throw new KernelError('logit_mask', `allowed mask must be u32 (got ${allowed.dtype})`);
  if (V > logits.numel || Math.ceil(V / 32) > allowed.numel) throw new KernelError('logit_mask', `V=${V} exceeds logits [${logits.shape}] or mask [${allowed.shape}]`);
  dispatch(ctx.gpu, ctx.pass, logitMaskKernel, { act: logits.dtype }, {
    buffers: [logits.buffer, allowed.buffer],
    uniforms: { V },
    workgroups: grid(Math.ceil(V / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
