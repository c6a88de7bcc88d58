/**
 * Bench section `q4matmul`: the prefill 4-bit matrix product, M tokens x a Nemo q projection
 * (5120 -> 4096), in TFLOP/s (2 M N K per product), for every variant of shaders/q4_matmul.wgsl
 * (`Q4MatMulVariant`: tile64, tile128) and, where the device passed its check, the
 * subgroup-matrix kernel (`subgroupMatrix`: f16 operands on the matrix units), with
 * `fractionOfMatmulPeak` of the dense matmul peak measured in the same run
 * (bench/sections/matmul.ts: the yardstick of prefill figures; an f32 kernel, so the matrix units
 * can exceed 1); with 4 subgroups per workgroup too where the device has `subgroup_id` (each
 * subgroup-matrix row's `kernel` says which). `subgroupMatrix` in the output says which shape is
 * the default, or why none is.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { destroyQ4, q4MatMul, type Q4MatMulVariant } from '../../src/kernels/q4.js';
import { uploadSynthQ4 } from '../../test/kernels/ref/q4.js';
import { checkSubgroupMatrix, checkSubgroupMatrixShape } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape, fourSubgroups, type SubgroupMatrixShape } from '../../src/kernels/subgroup-matrix.js';
import { isSoftware, timeDispatches } from './timing.js';
import { matmulPeak } from './matmul.js';

export async function run(gpu: Gpu): Promise<object> {
  const K = 5120;
  const N = 4096;
  const peak = (await matmulPeak(gpu)).matmulPeakGflops;
  const verdict = await checkSubgroupMatrix(gpu);
  // Each kernel to time: the tiles, then the checked subgroup-matrix shape and its 4-subgroup
  // workgroups (`kernel` in the output) where the device passes the same check with them.
  const runs: { variant: Q4MatMulVariant; shape?: SubgroupMatrixShape }[] = [{ variant: 'tile64' }, { variant: 'tile128' }];
  if (verdict.shape) {
    runs.push({ variant: 'subgroupMatrix', shape: verdict.shape });
    const four = fourSubgroups(gpu, verdict.shape);
    if (four && !(await checkSubgroupMatrixShape(gpu, four))) runs.push({ variant: 'subgroupMatrix', shape: four });
  }
  const w = uploadSynthQ4(gpu, N, K, 11, 'bench.q4mm');
  const q4matmul = [];
  try {
    for (const M of isSoftware(gpu) ? [128] : [64, 256, 512, 2048]) {
      const x = Tensor.from(gpu, new Float32Array(M * K).fill(0.25), [M, K], 'f32', 'bench.X');
      const y = Tensor.empty(gpu, [M, N], 'f32', 'bench.Y');
      for (const { variant, shape } of runs) {
        const t = await timeDispatches(gpu, 'q4_matmul', (ctx) => q4MatMul(ctx, w, x, y, M, { variant, shape }));
        const TFLOPs = (2 * M * N * K) / t.ms / 1e9;
        q4matmul.push({
          shape: `${M}x${K}x${N}`, variant, ...(shape ? { kernel: describeShape(shape) } : {}),
          ms: t.ms, TFLOPs, fractionOfMatmulPeak: (TFLOPs * 1000) / peak, iters: t.iters, timing: t.method,
        });
      }
      x.destroy();
      y.destroy();
    }
  } finally {
    destroyQ4(w);
  }
  const subgroupMatrix = verdict.shape
    ? `${describeShape(verdict.shape)}${verdict.isDefault ? ' (the default)' : `: ${verdict.reason}`}`
    : `not used: ${verdict.reason}`;
  return { q4matmul, q4matmulPeakGflops: peak, subgroupMatrix };
}
