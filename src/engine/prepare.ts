/**
 * The last load phase, shared by every loader (converted models and GGUF pairs): every pipeline
 * the model will dispatch is compiled in parallel (`compileModelPipelines`) with `compile`
 * progress events, the smallest real input runs once (`warmModel`), then `done`; so the first
 * answer costs what later ones do, whatever format the weights came in.
 */
import type { Gpu } from '../gpu/device.js';
import type { Sampler } from '../kernels/sampling.js';
import type { VisionLanguageModel } from '../model/vlm.js';
import { compileModelPipelines, warmModel } from '../model/pipelines.js';
import { containProgress, type ProgressCallback } from '../weights/progress.js';

/** Compiles and warms `model`; events report `bytes` loaded of `bytes` over `shardCount` files. Resolves to the pipeline count. */
export async function prepareModel(
  gpu: Gpu,
  model: VisionLanguageModel,
  sampler: Sampler,
  o: { bytes: number; shardCount: number; onProgress?: ProgressCallback },
): Promise<number> {
  // The same contained callback the downloader uses: one that throws stops its events, not the load.
  const progress = containProgress(o.onProgress);
  const event = (phase: 'compile' | 'done', done: number, total: number) =>
    progress?.({ phase, loadedBytes: o.bytes, totalBytes: o.bytes, shardIndex: -1, shardCount: o.shardCount, bytesPerSecond: 0, pipelinesCompiled: done, pipelinesTotal: total });
  const pipelines = await compileModelPipelines(gpu, model, sampler, (done, total) => event('compile', done, total));
  await warmModel(gpu, model, sampler);
  event('done', pipelines, pipelines);
  await gpu.sync();
  return pipelines;
}
