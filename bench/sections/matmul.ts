/**
 * Benchmark section: the vision encoder's dense matmul at real Pixtral ViT shapes,
 * 4096 patches x 1024 -> 1024 (attention projections) and 1024 -> 4096 (MLP up), f16 weights
 * as converted, f32 activations (and f16 activations when the device has shader-f16).
 * GPU time per dispatch from timestamp queries when `timestamp-query` is available, else wall
 * time over repeated submits each followed by `gpu.sync()`. Reports ms (median, min) and GFLOP/s.
 * Also `matmulPeakGflops`: the adapter's dense matmul peak as this engine measures it, the best
 * GFLOP/s of the dense matmul kernel (f16 weights; f32 and, with shader-f16, f16 activations) at
 * a large square shape (`peakShape`). WebGPU has no vendor GEMM to compare with, so this is the
 * yardstick the prefill figure (`e2e.<model>.prefillFractionOfMatmulPeak`) is a fraction of.
 * Where the device passed its subgroup-matrix check, every case also runs on the matrix units
 * (`variant: 'subgroupMatrix'`, f16 operands; `kernel` names the shape, also 4 subgroups per
 * workgroup where the device has `subgroup_id`) and the peak is the best of the kernels.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { record, type Ctx } from '../../src/gpu/kernel.js';
import { readBuffer, Tensor } from '../../src/gpu/tensor.js';
import { destroyWeight, matmul, uploadWeight } from '../../src/kernels/matmul.js';
import { checkSubgroupMatrix, checkSubgroupMatrixShape } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape, fourSubgroups, type SubgroupMatrixShape } from '../../src/kernels/subgroup-matrix.js';
import { toF16 } from '../../src/util/f16.js';

interface Case {
  M: number;
  K: number;
  N: number;
  act: 'f32' | 'f16';
  weight: 'f16';
  variant: 'tiled' | 'subgroupMatrix';
  /** The subgroup-matrix shape (`describeShape`), for that variant. */
  kernel?: string;
}

export interface MatmulResult extends Case {
  timing: 'timestamp-query' | 'wall';
  iters: number;
  msMedian: number;
  msMin: number;
  gflops: number;
}

/** Deterministic uniform values in [-1, 1) scaled by `scale` (xorshift32). */
function fill(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Iterations so that one case takes about `budgetMs`, at least 1 and at most 20. */
function itersFor(oneMs: number, budgetMs = 1500): number {
  return Math.max(1, Math.min(20, Math.round(budgetMs / Math.max(oneMs, 1e-3))));
}

async function timeCase(gpu: Gpu, c: Case, shape?: SubgroupMatrixShape): Promise<MatmulResult> {
  const { M, K, N } = c;
  const xv = fill(M * K, 1, 1);
  const x = Tensor.from(gpu, c.act === 'f16' ? toF16(xv) : xv, [M, K], c.act, 'bench-x'); // [M, K]
  const w = uploadWeight(gpu, fill(N * K, 2, 1 / Math.sqrt(K)), [N, K], c.weight, 'bench-w'); // [N, K] f16
  const y = Tensor.empty(gpu, [M, N], c.act, 'bench-y'); // [M, N]
  const body = (ctx: Ctx) => matmul(ctx, x, w, y, { variant: c.variant, shape });
  try {
    // Warm-up: pipeline compilation and first-touch costs, also a wall-time estimate for the count.
    let t0 = performance.now();
    record(gpu, 'bench-matmul-warmup', body);
    await gpu.sync();
    const iters = itersFor(performance.now() - t0);
    const times: number[] = [];
    let timing: MatmulResult['timing'] = 'wall';
    if (gpu.features.timestampQuery) {
      timing = 'timestamp-query';
      const querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * iters });
      const resolve = gpu.device.createBuffer({
        label: 'bench-timestamps',
        size: 16 * iters, // [iters, 2] u64 ns
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      try {
        for (let i = 0; i < iters; i++) {
          const enc = gpu.device.createCommandEncoder({ label: 'bench-matmul' });
          const pass = enc.beginComputePass({
            label: 'bench-matmul',
            timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
          });
          body({ gpu, pass });
          pass.end();
          if (i === iters - 1) enc.resolveQuerySet(querySet, 0, 2 * iters, resolve, 0);
          gpu.submit([enc.finish()]);
        }
        const ns = new BigInt64Array(await readBuffer(gpu, resolve, 0, 16 * iters));
        for (let i = 0; i < iters; i++) times.push(Number(ns[2 * i + 1]! - ns[2 * i]!) / 1e6);
      } finally {
        querySet.destroy();
        resolve.destroy();
      }
    } else {
      for (let i = 0; i < iters; i++) {
        t0 = performance.now();
        record(gpu, 'bench-matmul', body);
        await gpu.sync();
        times.push(performance.now() - t0);
      }
    }
    const msMedian = median(times);
    return {
      ...c,
      timing,
      iters,
      msMedian,
      msMin: Math.min(...times),
      gflops: (2 * M * N * K) / (msMedian * 1e6),
    };
  } finally {
    x.destroy();
    y.destroy();
    destroyWeight(w);
  }
}

/** M = N = K of the peak measurement: 4096 on GPUs (137 GFLOP), 1024 on CPU adapters. */
export function peakShape(gpu: Gpu): number {
  return gpu.isSoftware ? 1024 : 4096;
}

/** One dense kernel to time: tiled, or a subgroup-matrix shape. */
type Kernel = { variant: Case['variant']; shape?: SubgroupMatrixShape };

/**
 * The dense kernels to time on this device: tiled, and where the check passed the checked
 * subgroup-matrix shape and its 4-subgroup workgroups (where those pass the same check).
 */
async function kernels(gpu: Gpu): Promise<Kernel[]> {
  const shape = (await checkSubgroupMatrix(gpu)).shape;
  const out: Kernel[] = [{ variant: 'tiled' }];
  if (!shape) return out;
  out.push({ variant: 'subgroupMatrix', shape });
  const four = fourSubgroups(gpu, shape);
  if (four && !(await checkSubgroupMatrixShape(gpu, four))) out.push({ variant: 'subgroupMatrix', shape: four });
  return out;
}

const caseOf = (k: Kernel) => ({ variant: k.variant, ...(k.shape ? { kernel: describeShape(k.shape) } : {}) });

/** The dense matmul peak (see the module comment): best GFLOP/s over the activation dtypes and kernels. */
export async function matmulPeak(gpu: Gpu): Promise<{ matmulPeakGflops: number; peakCases: MatmulResult[] }> {
  const n = peakShape(gpu);
  const acts: ('f32' | 'f16')[] = gpu.features.f16 ? ['f32', 'f16'] : ['f32'];
  const peakCases: MatmulResult[] = [];
  for (const k of await kernels(gpu)) {
    for (const act of acts) peakCases.push(await timeCase(gpu, { M: n, K: n, N: n, act, weight: 'f16', ...caseOf(k) }, k.shape));
  }
  return { matmulPeakGflops: Math.max(...peakCases.map((c) => c.gflops)), peakCases };
}

/**
 * Times the ViT matmuls; returns `{ section, cases: MatmulResult[] }`. `opts.patches` (default
 * 4096) shrinks M for a quick smoke run on a CPU adapter.
 */
export async function run(gpu: Gpu, opts: { patches?: number } = {}): Promise<object> {
  const M = opts.patches ?? 4096;
  const acts: ('f32' | 'f16')[] = gpu.features.f16 ? ['f32', 'f16'] : ['f32'];
  const cases: MatmulResult[] = [];
  for (const k of await kernels(gpu))
    for (const act of acts)
      for (const [K, N] of [
        [1024, 1024],
        [1024, 4096],
      ] as const) {
        cases.push(await timeCase(gpu, { M, K, N, act, weight: 'f16', ...caseOf(k) }, k.shape));
      }
  return { section: 'matmul', cases, ...(await matmulPeak(gpu)) };
}
