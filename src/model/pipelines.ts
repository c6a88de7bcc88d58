/**
 * Compiling a model's pipelines during load, so the first answer costs what later ones do: one
 * dry recording of every stage at the shapes the model runs (vision at its largest image, the
 * projector, the decoder at one token, two tokens and a full prefill chunk, lm_head, and every
 * sampling mode) under `PipelineCache.plan`, which notes the pipelines instead of recording and
 * then builds them all in parallel with `createComputePipelineAsync`. A pipeline this misses is
 * still built on first use, as before.
 */
import type { Gpu } from '../gpu/device.js';
import { TOPK_MAX, type Sampler } from '../kernels/sampling.js';
import type { VisionLanguageModel } from './vlm.js';

/** Compiles what `model` and `sampler` will dispatch; reports pipelines done of total. Resolves to the total. */
export function compileModelPipelines(
  gpu: Gpu,
  model: VisionLanguageModel,
  sampler: Sampler,
  onCompiled?: (done: number, total: number) => void,
): Promise<number> {
  return gpu.pipelines.plan(() => {
    const enc = gpu.device.createCommandEncoder({ label: 'pipeline-plan' });
    const pass = enc.beginComputePass({ label: 'pipeline-plan' });
    const ctx = { gpu, pass };
    try {
      const v = model.config.vision;
      // The largest square image the patch budget takes (the encoder's kernels do not depend on
      // the grid's shape, only on the head and hidden sizes).
      const side = Math.min(v.imageSize / v.patchSize, Math.floor(Math.sqrt(model.limits.maxPatches)));
      const px = side * v.patchSize;
      const image = { pixels: new Float32Array(3 * px * px), height: px, width: px };
      const enc2 = model.vision.encode(ctx, [image]);
      model.projector.project(ctx, enc2.out, enc2.patches, enc2.grids);
      const dec = model.decoder;
      for (const T of new Set([1, Math.min(2, dec.maxChunk), dec.maxChunk])) {
        dec.embedTokens(ctx, new Uint32Array(T));
        dec.layers(ctx, T, 0, model.cache);
        dec.finalNorm(ctx, T);
      }
      dec.lastLogits(ctx);
      const greedy = { temperature: 0, topK: 1, topP: 1, repetitionPenalty: 1.1, u: 0 };
      sampler.record(ctx, dec.logits, greedy);
      sampler.record(ctx, dec.logits, { ...greedy, temperature: 1, topK: TOPK_MAX, topP: 0.9, u: 0.5 });
    } finally {
      pass.end();
    }
  }, onCompiled);
}
