/**
 * SiLU-gated product of a gated MLP: `out = silu(gate) * up` (Pixtral ViT and Mistral decoder
 * feed-forward: w2(silu(w1 x) * w3 x)). Gate and up come as two [T, I] tensors or as one fused
 * [T, 2I] tensor (gate = first I columns, up = last I). Computed in f32.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/silu_mul.wgsl?raw';

const WG = 256;

export const siluMulKernel = defineKernel({
  name: 'silu_mul',
  source,
  bindings: [
    { name: 'gate', access: 'read' },
    { name: 'up', access: 'read' },
    { name: 'out', access: 'write' },
  ],
  uniforms: { I: 'u32', ld: 'u32', upOff: 'u32', total: 'u32' },
  specialize: (k: { dtype: 'f32' | 'f16' }) => ({ defines: { F16: k.dtype === 'f16' }, overrides: { WG } }),
});

function check(fail: (m: string) => never, t: Tensor, out: Tensor): void {
  if (t.dtype !== out.dtype || (t.dtype !== 'f32' && t.dtype !== 'f16')) fail(`dtypes ${t.dtype} -> ${out.dtype}`);
  if (t.buffer === out.buffer) fail('out must be a different buffer from the inputs');
}

/** out [T, I] = silu(gate [T, I]) * up [T, I]. */
export function siluMul(ctx: Ctx, gate: Tensor, up: Tensor, out: Tensor): void {
  const fail = (msg: string): never => {
    throw new KernelError('silu_mul', `silu(${gate.label}) * ${up.label} -> ${out.label}: ${msg}`);
  };
  const I = out.shape[out.shape.length - 1] ?? 0;
  check(fail, gate, out);
  check(fail, up, out);
  if (gate.numel !== out.numel || up.numel !== out.numel || gate.shape[gate.shape.length - 1] !== I || up.shape[up.shape.length - 1] !== I) {
    fail(`shapes [${gate.shape}], [${up.shape}] -> [${out.shape}] differ`);
  }
  run(ctx, gate.buffer, up.buffer, out, I, I, 0);
}

/** out [T, I] = silu(gateUp[:, :I]) * gateUp[:, I:] for a fused gateUp [T, 2I]. */
export function siluMulFused(ctx: Ctx, gateUp: Tensor, out: Tensor): void {
  const fail = (msg: string): never => {
    throw new KernelError('silu_mul', `${gateUp.label} -> ${out.label}: ${msg}`);
  };
  const I = out.shape[out.shape.length - 1] ?? 0;
  check(fail, gateUp, out);
  if (gateUp.shape[gateUp.shape.length - 1] !== 2 * I || gateUp.numel !== 2 * out.numel) {
    fail(`fused input [${gateUp.shape}] must be [T, 2I] for out [${out.shape}]`);
  }
  run(ctx, gateUp.buffer, gateUp.buffer, out, I, 2 * I, I);
}

function run(ctx: Ctx, gate: GPUBuffer, up: GPUBuffer, out: Tensor, I: number, ld: number, upOff: number): void {
  const total = out.numel;
  if (total === 0) return;
  dispatch(ctx.gpu, ctx.pass, siluMulKernel, { dtype: out.dtype as 'f32' | 'f16' }, {
    buffers: [gate, up, out.buffer], // [T, ld] act (gate at column 0), [T, ld] act (up at upOff), [T, I] act
    uniforms: { I, ld, upOff, total },
    workgroups: grid(Math.ceil(total / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
