/**
 * Bench section `gguf`: decode (batch 1) matrix-vector product with weights in llama.cpp's Q4_K
 * blocks as a GGUF stores them (src/kernels/gguf.ts), against the project's own q4 format
 * (section q4matvec's timing) on the same shapes in the same run. Both move 4.5 bits per weight.
 * GB/s counts the bytes that must move (weight + x + y); fractionOfCopy compares with the copy
 * kernel of the same run; `vsQ4` = Q4_K GB/s / q4 GB/s (the issue asks for >= 0.9). As in
 * q4matvec, the timed loop cycles through >= 256 MiB of weight copies so no cache holds them.
 * Software adapters run one shape (5120 -> 1024) to stay short.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { defaultGgufMatVecConfig, destroyGgufWeight, ggufMatVec, ggufRowBytes, uploadGgufWeight, type GgufWeight } from '../../src/kernels/gguf.js';
import { createBuffer } from '../../src/gpu/tensor.js';
import { synthGguf } from '../../test/kernels/ref/gguf.js';
import { NEMO_SHAPES, timeMatVec } from './q4matvec.js';
import { copyGBps, timeDispatches } from './timing.js';

const ROTATE_BYTES = 256 * 2 ** 20;

/** `count - 1` GPU-side copies of `w`, `w` first. */
function replicate(gpu: Gpu, w: GgufWeight, count: number): GgufWeight[] {
  const out = [w];
  const enc = gpu.device.createCommandEncoder({ label: 'bench.gguf.replicate' });
  for (let c = 1; c < count; c++) {
    const parts = w.parts.map((p, i) => {
      const data = createBuffer(gpu, p.data.size, `${w.label}#${c}[${i}]`);
      enc.copyBufferToBuffer(p.data, 0, data, 0, p.data.size);
      return { ...p, data };
    });
    out.push({ ...w, parts, label: `${w.label}#${c}` });
  }
  gpu.submit([enc.finish()]);
  return out;
}

async function timeQ4K(gpu: Gpu, K: number, N: number) {
  const type = 'Q4_K' as const;
  const weightBytes = N * ggufRowBytes(type, K);
  const copies = Math.ceil(ROTATE_BYTES / weightBytes);
  const ws = replicate(gpu, uploadGgufWeight(gpu, type, N, K, synthGguf(type, N, K, K ^ N), `bench.q4k.${K}x${N}`), copies);
  const x = Tensor.from(gpu, new Float32Array(K).fill(0.5), [K], 'f32', 'bench.x');
  const y = Tensor.empty(gpu, [N], 'f32', 'bench.y');
  const config = defaultGgufMatVecConfig(gpu);
  try {
    let i = 0;
    const t = await timeDispatches(gpu, 'gguf_matvec', (ctx) => ggufMatVec(ctx, ws[i++ % copies]!, x, y, { config }));
    const bytes = weightBytes + 4 * K + 4 * N;
    return { ms: t.ms, GBps: bytes / t.ms / 1e6, bytes, iters: t.iters, timing: t.method, config, copies };
  } finally {
    ws.forEach(destroyGgufWeight);
    x.destroy();
    y.destroy();
  }
}

export async function run(gpu: Gpu): Promise<object> {
  const shapes = gpu.isSoftware ? [[5120, 1024] as const] : NEMO_SHAPES.slice(0, 4);
  const gguf = [];
  for (const [K, N] of shapes) {
    const q4k = await timeQ4K(gpu, K, N);
    const q4 = await timeMatVec(gpu, K, N);
    await copyGBps(gpu, true);
    gguf.push({ shape: `${K}x${N}`, q4kGBps: q4k.GBps, q4GBps: q4.GBps, vsQ4: q4k.GBps / q4.GBps, q4kMs: q4k.ms, q4Ms: q4.ms, q4kFractionOfCopy: 0, q4FractionOfCopy: 0, q4kConfig: q4k.config, timing: q4k.timing, copies: q4k.copies });
  }
  const copy = await copyGBps(gpu);
  for (const r of gguf) {
    r.q4kFractionOfCopy = r.q4kGBps / copy.GBps;
    r.q4FractionOfCopy = r.q4GBps / copy.GBps;
  }
  return { gguf, copyGBps: copy.GBps };
}
