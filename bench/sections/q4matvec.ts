/**
 * Bench section `q4matvec`: the decode (batch 1) 4-bit matrix-vector product on the five Mistral
 * Nemo shapes with the adapter's default work split. GB/s counts the bytes that must move:
 * qweight + scales + x + y; fractionOfCopy compares it with the copy kernel in the same run
 * (copy is measured again between shapes and the best copy counts, so a busy machine does not
 * flatter the fraction). Decode reads each layer's weights once per token, from memory, never
 * from cache: so the timed loop cycles through enough GPU copies of the weight (>= 256 MiB, as
 * much as the copy kernel moves) that no cache (an H100 has 50 MB of L2) holds the next one.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { allocQ4, destroyQ4, q4MatVec, q4MatVecConfigFor, type Q4MatVecConfig, type Q4Weight } from '../../src/kernels/q4.js';
import { q4Bytes } from '../../src/quant/q4.js';
import { uploadSynthQ4 } from '../../test/kernels/ref/q4.js';
import { copyGBps, timeDispatches, type TimingMethod } from './timing.js';

/** K -> N of Nemo's decoder: q, k/v, gate/up, down, lm_head. */
export const NEMO_SHAPES: readonly [number, number][] = [
  [5120, 4096],
  [5120, 1024],
  [5120, 14336],
  [14336, 5120],
  [5120, 131072],
];

export interface MatVecResult {
  shape: string; // "KxN"
  ms: number;
  GBps: number;
  fractionOfCopy: number;
  bytes: number;
  iters: number;
  timing: TimingMethod;
  config: Q4MatVecConfig;
  parts: number;
  /** Copies of the weight cycled through (cache defeat). */
  copies: number;
}

/** Bytes the timed loop cycles through, at least. */
const ROTATE_BYTES = 256 * 2 ** 20;

/** `count - 1` more copies of `w` (GPU-side buffer copies), `w` first. */
function replicate(gpu: Gpu, w: Q4Weight, count: number): Q4Weight[] {
  const out = [w];
  const enc = gpu.device.createCommandEncoder({ label: 'bench.replicate' });
  for (let c = 1; c < count; c++) {
    const r = allocQ4(gpu, w.rows, w.cols, `${w.label}#${c}`, w.parts[0]!.qweight.size);
    r.parts.forEach((p, i) => {
      enc.copyBufferToBuffer(w.parts[i]!.qweight, 0, p.qweight, 0, p.qweight.size);
      enc.copyBufferToBuffer(w.parts[i]!.scales, 0, p.scales, 0, p.scales.size);
    });
    out.push(r);
  }
  gpu.submit([enc.finish()]);
  return out;
}

/** Times y = W x for a synthetic [N, K] q4 weight with `config` (default: the adapter's). */
export async function timeMatVec(
  gpu: Gpu,
  K: number,
  N: number,
  config?: Q4MatVecConfig,
  timing: { targetMs?: number } = {},
): Promise<MatVecResult> {
  const copy = await copyGBps(gpu);
  const b = q4Bytes(N, K);
  const copies = Math.ceil(ROTATE_BYTES / (b.qweight + b.scales));
  const ws = replicate(gpu, uploadSynthQ4(gpu, N, K, K ^ N, `bench.q4.${K}x${N}`), copies);
  const x = Tensor.from(gpu, new Float32Array(K).fill(0.5), [K], 'f32', 'bench.x');
  const y = Tensor.empty(gpu, [N], 'f32', 'bench.y');
  const cfg = config ?? q4MatVecConfigFor(gpu, N);
  try {
    let i = 0;
    const t = await timeDispatches(gpu, 'q4_matvec', (ctx) => q4MatVec(ctx, ws[i++ % copies]!, x, y, { config: cfg }), timing);
    const bytes = b.qweight + b.scales + 4 * K + 4 * N;
    const GBps = bytes / t.ms / 1e6;
    return {
      shape: `${K}x${N}`, ms: t.ms, GBps, fractionOfCopy: GBps / copy.GBps, bytes, iters: t.iters, timing: t.method,
      config: cfg, parts: ws[0]!.parts.length, copies,
    };
  } finally {
    ws.forEach(destroyQ4);
    x.destroy();
    y.destroy();
  }
}

export async function run(gpu: Gpu): Promise<object> {
  const q4matvec: MatVecResult[] = [];
  for (const [K, N] of NEMO_SHAPES) {
    q4matvec.push(await timeMatVec(gpu, K, N));
    await copyGBps(gpu, true);
  }
  const copy = await copyGBps(gpu);
  for (const r of q4matvec) r.fractionOfCopy = r.GBps / copy.GBps;
  return { q4matvec, copyGBps: copy.GBps, copy: { bytes: copy.bytes, ms: copy.ms, iters: copy.iters, samples: copy.samples } };
}
