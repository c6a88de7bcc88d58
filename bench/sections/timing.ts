/**
 * Timing for benchmark sections, using only the `Gpu` runtime (no DOM). A workload is a function
 * that records dispatches into a compute pass; `timeDispatches` repeats it back to back in one
 * pass and reports milliseconds per repetition, from timestamp queries when the device has
 * `timestamp-query`, else from wall time around submit + `gpu.sync()`. `copyGBps` measures the
 * bandwidth yardstick (src/kernels/copy.ts) once per device and run.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { record, type Ctx } from '../../src/gpu/kernel.js';
import { createBuffer } from '../../src/gpu/tensor.js';
import { copyBytes } from '../../src/kernels/copy.js';

export type TimingMethod = 'timestamp-query' | 'wall';

export interface Timing {
  /** Milliseconds per repetition. */
  ms: number;
  iters: number;
  method: TimingMethod;
}

/** True on CPU adapters, where sections use fewer repetitions. */
export function isSoftware(gpu: Gpu): boolean {
  return gpu.isSoftware;
}

export function timingMethod(gpu: Gpu): TimingMethod {
  return gpu.features.timestampQuery ? 'timestamp-query' : 'wall';
}

async function wallOnce(gpu: Gpu, label: string, body: (ctx: Ctx) => void, iters: number): Promise<number> {
  const t0 = performance.now();
  record(gpu, label, (ctx) => {
    for (let i = 0; i < iters; i++) body(ctx);
  });
  await gpu.sync();
  return performance.now() - t0;
}

async function timestamped(gpu: Gpu, label: string, body: (ctx: Ctx) => void, iters: number): Promise<number> {
  const device = gpu.device;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const enc = device.createCommandEncoder({ label });
    const pass = enc.beginComputePass({ label, timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    for (let i = 0; i < iters; i++) body({ gpu, pass });
    pass.end();
    enc.resolveQuerySet(querySet, 0, 2, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
    gpu.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    gpu.check();
    const [t0, t1] = new BigInt64Array(read.getMappedRange());
    return Number(t1! - t0!) / 1e6;
  } finally {
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
}

/**
 * Milliseconds of one run of `iters` back-to-back repetitions of `body`, no warm-up: for
 * sections that interleave many short samples of several workloads themselves.
 */
export async function timeRun(gpu: Gpu, label: string, body: (ctx: Ctx) => void, iters: number): Promise<number> {
  return timingMethod(gpu) === 'timestamp-query' ? timestamped(gpu, label, body, iters) : wallOnce(gpu, label, body, iters);
}

/**
 * Milliseconds per repetition of `body`. One warm-up (compiles pipelines), one probe to size the
 * runs, then `repeats` runs of back-to-back repetitions that together fill about `targetMs`
 * (each run within [minIters, maxIters] repetitions); the fastest run counts, which filters out
 * other processes sharing the machine (CI runners, SwiftShader's CPU threads).
 */
export async function timeDispatches(
  gpu: Gpu,
  label: string,
  body: (ctx: Ctx) => void,
  opts: { targetMs?: number; repeats?: number; minIters?: number; maxIters?: number } = {},
): Promise<Timing> {
  const soft = isSoftware(gpu);
  const targetMs = opts.targetMs ?? (soft ? 1500 : 300);
  const repeats = opts.repeats ?? 3;
  const minIters = opts.minIters ?? (soft ? 1 : 10);
  const maxIters = opts.maxIters ?? (soft ? 50 : 2000);
  await wallOnce(gpu, label, body, 1);
  const probe = await wallOnce(gpu, label, body, 1);
  const iters = Math.max(minIters, Math.min(maxIters, Math.round(targetMs / repeats / Math.max(probe, 1e-3))));
  const method = timingMethod(gpu);
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const total = method === 'timestamp-query' ? await timestamped(gpu, label, body, iters) : await wallOnce(gpu, label, body, iters);
    best = Math.min(best, total / iters);
  }
  return { ms: best, iters, method };
}

export interface CopyResult {
  GBps: number;
  ms: number;
  bytes: number;
  iters: number;
  /** How many times it was measured; GBps is the best. */
  samples: number;
}

const copyBest = new WeakMap<Gpu, CopyResult>();

/**
 * Copy bandwidth, bytes read + written per second (1e9), over a `mib` MiB buffer (default 256,
 * less if the device cannot bind that much). The first call measures; later calls return the
 * best so far, or measure again with `again` (sections interleave copies with their kernels so
 * both see the same load on a shared machine) and keep the best.
 */
export async function copyGBps(gpu: Gpu, again = false, mib = 256): Promise<CopyResult> {
  const prev = copyBest.get(gpu);
  if (prev && !again) return prev;
  const bytes = Math.min(mib * 2 ** 20, Math.floor(gpu.limits.maxStorageBufferBindingSize / 16) * 16);
  const src = createBuffer(gpu, bytes, 'bench.copy.src');
  const dst = createBuffer(gpu, bytes, 'bench.copy.dst');
  try {
    const t = await timeDispatches(gpu, 'copy', (ctx) => copyBytes(ctx, src, dst, bytes));
    const now = { GBps: (2 * bytes) / t.ms / 1e6, ms: t.ms, bytes, iters: t.iters, samples: (prev?.samples ?? 0) + 1 };
    const best = prev && prev.GBps >= now.GBps ? { ...prev, samples: now.samples } : now;
    copyBest.set(gpu, best);
    return best;
  } finally {
    src.destroy();
    dst.destroy();
  }
}
