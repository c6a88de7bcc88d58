/**
 * Bench section `attention`: one decode step of attention (split-K over the KV cache + combine on
 * GPUs, one pass walking the chunks on CPU adapters: `decodeAttention`'s default form, the other
 * form timed beside it as `otherFormMs`) at Mistral Nemo's shape (32 query heads over 8 kv heads, head_dim 128) at 4k and 16k context:
 * f32 activations over an f32 cache and over an f16-storage cache (halves packed in u32 pairs, any
 * adapter), and with shader-f16 f16 activations over an f16 cache. Decode attention is
 * memory-bound: it reads the K and V rows once, so the figure of merit is K+V bytes actually read
 * (at the cache's element size) per second, also given as a fraction of the copy yardstick
 * measured in the same run (`timing.ts`, bytes read + written per second).
 * It also times prefill attention, each variant (`simt`; `subgroupMatrix` where the device's
 * check passed) in TFLOP/s: vision (16 heads x 64, `vision`) and the decoder's causal prefill over
 * an f16 cache (`prefill`), at 4096 tokens on GPUs (one 1024 x 1024 image), 1024 on CPU adapters.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor, writeBuffer } from '../../src/gpu/tensor.js';
import type { Ctx } from '../../src/gpu/kernel.js';
import {
  blockDiagonalAttention, causalAttention, createDecodeScratch, createKvCache, decodeAttention, decodeChunk, destroyDecodeScratch,
  destroyKvCache, imageSegments, widestDecodeChunk, type AttentionPrefillVariant,
} from '../../src/kernels/attention.js';
import { checkSubgroupMatrix } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape, type SubgroupMatrixShape } from '../../src/kernels/subgroup-matrix.js';
import { toF16 } from '../../src/util/f16.js';
import { randn } from '../../test/helpers/random.js';
import { copyGBps, isSoftware, timeDispatches } from './timing.js';

const HEADS = 32;
const KV_HEADS = 8;
const HEAD_DIM = 128;

interface DecodeRow {
  ctx: number;
  /** Activation dtype (q, out). */
  dtype: 'f32' | 'f16';
  /** Element type of the K and V cache. */
  kv: 'f32' | 'f16';
  /** The default form here: split-K + combine (GPUs) or one pass per kv head (CPU adapters). */
  split: boolean;
  chunk: number;
  workgroups: number;
  ms: number;
  /** ms per step of the other form (split-K vs one pass), same inputs, timed right after. */
  otherFormMs: number;
  kvBytes: number;
  GBps: number;
  fractionOfCopy: number;
  iters: number;
  timing: string;
  /** ms per decode step by chunk size (GPUs only). */
  chunkSweepMs: Record<number, number>;
}

async function decodeRow(gpu: Gpu, nCtx: number, dtype: 'f32' | 'f16', kv: 'f32' | 'f16', copy: number, sweep: boolean): Promise<DecodeRow> {
  const cache = createKvCache(gpu, nCtx, KV_HEADS, HEAD_DIM, dtype, 'bench.kv', kv);
  const scratch = createDecodeScratch(gpu, nCtx, HEADS, HEAD_DIM, 32);
  const n = nCtx * KV_HEADS * HEAD_DIM;
  const fill = (t: Tensor, seed: number) => {
    const x = randn(n, seed);
    writeBuffer(gpu, t.buffer, 0, kv === 'f16' ? toF16(x) : x);
  };
  fill(cache.k, 1);
  fill(cache.v, 2);
  const qh = randn(HEADS * HEAD_DIM, 3);
  const q = Tensor.from(gpu, dtype === 'f16' ? toF16(qh) : qh, [HEADS, HEAD_DIM], dtype, 'bench.q');
  const out = Tensor.empty(gpu, [HEADS, HEAD_DIM], dtype, 'bench.out');
  const tag = `${nCtx}.${dtype}${kv === dtype ? '' : `.kv${kv}`}`;
  try {
    await gpu.sync(); // the cache upload is not part of the timing
    // Other chunk sizes (keys per workgroup), to retune decodeChunk per device class. Run first:
    // it also warms the GPU clocks before the timed default.
    const chunkSweep: Record<number, number> = {};
    if (sweep) {
      for (const c of [64, 128, 256, 512, 1024]) {
        const tc = await timeDispatches(gpu, `attention.decode.${tag}.c${c}`, (ctx) =>
          decodeAttention(ctx, out, q, cache, scratch, { nCtx, heads: HEADS, chunk: c }),
        );
        chunkSweep[c] = tc.ms;
      }
    }
    const split = !isSoftware(gpu);
    const t = await timeDispatches(gpu, `attention.decode.${tag}`, (ctx) =>
      decodeAttention(ctx, out, q, cache, scratch, { nCtx, heads: HEADS }),
    );
    const other = await timeDispatches(gpu, `attention.decode.${tag}.${split ? 'onepass' : 'split'}`, (ctx) =>
      decodeAttention(ctx, out, q, cache, scratch, { nCtx, heads: HEADS, split: !split }),
    );
    const kvBytes = 2 * n * (kv === 'f16' ? 2 : 4);
    const GBps = kvBytes / t.ms / 1e6;
    const wgLimit = gpu.limits.maxComputeWorkgroupStorageSize;
    const chunk = split ? decodeChunk(nCtx, HEADS / KV_HEADS, HEAD_DIM, wgLimit) : widestDecodeChunk(HEADS / KV_HEADS, HEAD_DIM, wgLimit);
    return {
      ctx: nCtx, dtype, kv, split, chunk, workgroups: split ? Math.ceil(nCtx / chunk) * KV_HEADS : KV_HEADS, ms: t.ms, otherFormMs: other.ms,
      kvBytes, GBps, fractionOfCopy: GBps / copy, iters: t.iters, timing: t.method, chunkSweepMs: chunkSweep,
    };
  } finally {
    q.destroy();
    out.destroy();
    destroyKvCache(cache);
    destroyDecodeScratch(scratch);
  }
}

type PrefillVariant = { variant: AttentionPrefillVariant; shape?: SubgroupMatrixShape };

/** Each prefill variant this device can run: SIMT, and the subgroup-matrix kernel once its check passed. */
async function prefillVariants(gpu: Gpu): Promise<PrefillVariant[]> {
  const verdict = await checkSubgroupMatrix(gpu);
  return [{ variant: 'simt' }, ...(verdict.shape ? [{ variant: 'subgroupMatrix' as const, shape: verdict.shape }] : [])];
}

/** ms, TFLOP/s (flops given) and the timing method of one prefill dispatch per variant. */
async function timeVariants(gpu: Gpu, tag: string, flops: number, variants: PrefillVariant[], run: (ctx: Ctx, v: PrefillVariant) => void) {
  const rows: object[] = [];
  for (const v of variants) {
    const t = await timeDispatches(gpu, `attention.${tag}.${v.variant}`, (ctx) => run(ctx, v));
    rows.push({ variant: v.variant, ...(v.shape ? { shape: describeShape(v.shape) } : {}), ms: t.ms, TFLOPs: flops / t.ms / 1e9, iters: t.iters, timing: t.method });
  }
  return rows;
}

/** Vision attention, one 1024 x 1024 image (T = 4096 patches) x 16 heads x 64, non-causal. */
async function visionRows(gpu: Gpu, variants: PrefillVariant[], T: number): Promise<object> {
  const [H, d] = [16, 64];
  const mk = (seed: number) => Tensor.from(gpu, randn(T * H * d, seed), [T, H, d], 'f32', 'bench.vis');
  const [q, k, v] = [mk(4), mk(5), mk(6)];
  const seg = Tensor.from(gpu, imageSegments([T]), [T, 2], 'u32', 'bench.seg');
  const out = Tensor.empty(gpu, [T, H, d], 'f32', 'bench.vis.out');
  try {
    const flops = 4 * T * T * d * H; // q k^T and p v, 2 flops per multiply-add
    const runs = await timeVariants(gpu, 'vision', flops, variants, (ctx, x) =>
      blockDiagonalAttention(ctx, out, q, k, v, seg, { tokens: T, heads: H, kvHeads: H, headDim: d, keyRows: T, ...x }),
    );
    return { patches: T, heads: H, headDim: d, runs };
  } finally {
    for (const x of [q, k, v, seg, out]) x.destroy();
  }
}

/**
 * The decoder's prefill attention at Nemo's shape: T = 4096 new tokens (a 1024 x 1024 image and a
 * question) over an f16-storage cache holding them, causal: half the 4 T^2 d H flops of full attention.
 */
async function decoderPrefillRows(gpu: Gpu, variants: PrefillVariant[], T: number): Promise<object> {
  const cache = createKvCache(gpu, T, KV_HEADS, HEAD_DIM, 'f32', 'bench.prefill.kv', 'f16');
  const n = T * KV_HEADS * HEAD_DIM;
  writeBuffer(gpu, cache.k.buffer, 0, toF16(randn(n, 7)));
  writeBuffer(gpu, cache.v.buffer, 0, toF16(randn(n, 8)));
  const q = Tensor.from(gpu, randn(T * HEADS * HEAD_DIM, 9), [T, HEADS, HEAD_DIM], 'f32', 'bench.prefill.q');
  const out = Tensor.empty(gpu, [T, HEADS, HEAD_DIM], 'f32', 'bench.prefill.out');
  try {
    await gpu.sync();
    const flops = 2 * T * T * HEAD_DIM * HEADS;
    const runs = await timeVariants(gpu, 'prefill', flops, variants, (ctx, x) => causalAttention(ctx, out, q, cache, { tokens: T, heads: HEADS, pos0: 0, ...x }));
    return { tokens: T, cache: 'f16', runs };
  } finally {
    q.destroy();
    out.destroy();
    destroyKvCache(cache);
  }
}

export async function run(gpu: Gpu): Promise<object> {
  const copy = (await copyGBps(gpu)).GBps;
  // (activations, cache): f32 over f32, f32 over packed f16 (any adapter), f16 over f16 (shader-f16).
  const variants: ['f32' | 'f16', 'f32' | 'f16'][] = [['f32', 'f32'], ['f32', 'f16']];
  if (gpu.features.f16) variants.push(['f16', 'f16']);
  const decode: DecodeRow[] = [];
  for (const [dtype, kv] of variants) {
    for (const nCtx of [4096, 16384]) {
      decode.push(await decodeRow(gpu, nCtx, dtype, kv, copy, !isSoftware(gpu)));
      await copyGBps(gpu, true); // interleave: the copy figure sees the same machine load
    }
  }
  const best = (await copyGBps(gpu)).GBps;
  for (const r of decode) r.fractionOfCopy = r.GBps / best;
  // 4096 tokens: ~70 and ~140 GFLOP, milliseconds on a GPU but minutes on a CPU adapter, which
  // runs 1024 (1/16 of the work; the `patches` and `tokens` fields say which).
  const prefillRuns = await prefillVariants(gpu);
  const T = isSoftware(gpu) ? 1024 : 4096;
  const vision = await visionRows(gpu, prefillRuns, T);
  const prefill = await decoderPrefillRows(gpu, prefillRuns, T);
  return { attention: { shape: { heads: HEADS, kvHeads: KV_HEADS, headDim: HEAD_DIM }, copyGBps: best, decode, vision, prefill } };
}
