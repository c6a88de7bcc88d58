/**
 * Decode-step fusion of RoPE and the KV-cache append (`shaders/rope_kv_write.wgsl`): for one
 * token's packed q|k|v row (the fused q/k/v projection's output), rotates the q and k heads in
 * place and writes the rotated k and the v at cache row `pos`, in one dispatch instead of three
 * (rope, kv_write k, kv_write v). Bit-identical to `ropeInPlace` over the q and k heads followed
 * by `kvWrite`. 1D RoPE without the llama-4 query scale. On GPUs the decoder folds this step into
 * the attention dispatch instead (`decodeAttention`'s `rope` option, `Decoder.ropeInAttention`),
 * which is tested bit for bit against this kernel (attention-rope-kv.test.ts).
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import { packedKv, type KvCache } from './attention.js';
import type { RopeTable } from './rope.js';
import source from '../../shaders/rope_kv_write.wgsl?raw';

const WG = 256;

export const ropeKvWriteKernel = defineKernel({
  name: 'rope_kv_write',
  source,
  bindings: [
    { name: 'x', access: 'write' },
    { name: 'tab', access: 'read' },
    { name: 'kc', access: 'write' },
    { name: 'vc', access: 'write' },
  ],
  uniforms: { n_q: 'u32', n_kv: 'u32', half: 'u32', k_off: 'u32', v_off: 'u32', pos: 'u32', lo_size: 'u32', attn_factor: 'f32' },
  specialize: (k: { dtype: 'f32' | 'f16'; kvF16: boolean }) => ({ defines: { F16: k.dtype === 'f16', KV_F16: k.kvF16 }, overrides: { WG } }),
});

/**
 * qkv: [>= (qHeads + 2 kvHeads) * d] act, the row [q | k | v] of the token at position `pos`;
 * rotated in place (q and k heads), and k, v appended to `cache` at row `pos`.
 */
export function ropeKvWrite(ctx: Ctx, qkv: Tensor, table: RopeTable, cache: KvCache, a: { qHeads: number; pos: number; attnFactor?: number }): void {
  const name = 'rope_kv_write';
  if (table.kind !== '1d') throw new KernelError(name, 'needs a 1D rope table (buildRopeTable)');
  const d = cache.headDim;
  if (table.headDim !== d) throw new KernelError(name, `rope table head_dim ${table.headDim} != cache head_dim ${d}`);
  if (d % 4) throw new KernelError(name, `head_dim ${d} must be a multiple of 4`);
  if (qkv.dtype !== 'f32' && qkv.dtype !== 'f16') throw new KernelError(name, `qkv must be f32 or f16, got ${qkv.dtype}`);
  const kvF16 = packedKv(name, cache, qkv.dtype);
  const kvDim = cache.kvHeads * d;
  if (!Number.isInteger(a.qHeads) || a.qHeads < 1) throw new KernelError(name, `qHeads ${a.qHeads} must be a positive integer`);
  if (qkv.numel < a.qHeads * d + 2 * kvDim) throw new KernelError(name, `qkv [${qkv.shape}] shorter than ${a.qHeads} + 2 x ${cache.kvHeads} heads of ${d}`);
  if (!Number.isInteger(a.pos) || a.pos < 0 || a.pos >= cache.maxCtx || a.pos >= table.maxPos) {
    throw new KernelError(name, `position ${a.pos} outside the cache (${cache.maxCtx}) or the rope table (${table.maxPos})`);
  }
  const half = d / 2;
  const threads = ((a.qHeads + cache.kvHeads) * half) / 2 + cache.kvHeads * half;
  dispatch(ctx.gpu, ctx.pass, ropeKvWriteKernel, { dtype: qkv.dtype, kvF16 }, {
    buffers: [qkv.buffer, table.tensor.buffer, cache.k.buffer, cache.v.buffer],
    uniforms: {
      n_q: a.qHeads, n_kv: cache.kvHeads, half, k_off: a.qHeads * d, v_off: a.qHeads * d + kvDim, pos: a.pos,
      lo_size: table.loSize, attn_factor: a.attnFactor ?? 1,
    },
    workgroups: grid(Math.ceil(threads / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
