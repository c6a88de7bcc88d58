/**
 * Bench section `q4matmul`: the prefill 4-bit matrix product, M tokens x a Nemo q projection
 * (5120 -> 4096), in TFLOP/s (2 M N K per product) and weight GB/s.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { destroyQ4, q4MatMul } from '../../src/kernels/q4.js';
import { uploadSynthQ4 } from '../../test/kernels/ref/q4.js';
import { isSoftware, timeDispatches } from './timing.js';

export async function run(gpu: Gpu): Promise<object> {
  const K = 5120;
  const N = 4096;
  const w = uploadSynthQ4(gpu, N, K, 11, 'bench.q4mm');
  const q4matmul = [];
  try {
    for (const M of isSoftware(gpu) ? [64] : [64, 512, 2048]) {
      const x = Tensor.from(gpu, new Float32Array(M * K).fill(0.25), [M, K], 'f32', 'bench.X');
      const y = Tensor.empty(gpu, [M, N], 'f32', 'bench.Y');
      const t = await timeDispatches(gpu, 'q4_matmul', (ctx) => q4MatMul(ctx, w, x, y, M));
      q4matmul.push({ shape: `${M}x${K}x${N}`, ms: t.ms, TFLOPs: (2 * M * N * K) / t.ms / 1e9, iters: t.iters, timing: t.method });
      x.destroy();
      y.destroy();
    }
  } finally {
    destroyQ4(w);
  }
  return { q4matmul };
}
