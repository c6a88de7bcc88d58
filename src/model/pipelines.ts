/**
 * Compiling a model's pipelines during load, so the first answer costs what later ones do: one
 * dry recording of every stage at the shapes the model runs (vision at its largest image, the
 * projector, also for an image of one token, the decoder at one token, two tokens and a full
 * prefill chunk, lm_head with and without the final norm folded in, a response_format's mask, and
 * every sampling mode) under `PipelineCache.plan`, which notes the pipelines instead of recording and
 * then builds them all in parallel with `createComputePipelineAsync`. A pipeline this misses is
 * still built on first use, as before. Before planning, the subgroup-matrix prefill kernels get
 * their one-off check on the device (`checkSubgroupMatrix`), so the plan holds the prefill
 * kernels the model will really use. `warmModel` then runs the smallest real input once, so the
 * other first-use costs are paid during load too.
 */
import type { Gpu } from '../gpu/device.js';
import { TOPK_MAX, type Sampler } from '../kernels/sampling.js';
import { imageTokenIds } from '../text/prompt.js';
import { Tensor } from '../gpu/tensor.js';
import { maskLogits } from '../kernels/logit-mask.js';
import { checkSubgroupMatrix } from '../kernels/subgroup-matrix-check.js';
import { markSubgroupMatrix, subgroupMatrixVerdict } from '../kernels/subgroup-matrix.js';
import { KernelError } from '../errors.js';
import type { VisionLanguageModel } from './vlm.js';

/** Compiles what `model` and `sampler` will dispatch; reports pipelines done of total. Resolves to the total. */
export async function compileModelPipelines(
  gpu: Gpu,
  model: VisionLanguageModel,
  sampler: Sampler,
  onCompiled?: (done: number, total: number) => void,
): Promise<number> {
  await checkSubgroupMatrix(gpu);
  try {
    return await gpu.pipelines.plan(() => recordEveryStage(gpu, model, sampler), onCompiled);
  } catch (e) {
    // A subgroup-matrix variant the check did not build (a GGUF block format's, a cache form of
    // the attention's) failed to compile on this device: the model keeps the tiled and SIMT
    // kernels instead of failing to load.
    const v = subgroupMatrixVerdict(gpu);
    if (!(e instanceof KernelError) || !e.kernel.endsWith('subgroup_matrix') || !v?.shape || !v.isDefault) throw e;
    markSubgroupMatrix(gpu, { shape: v.shape, isDefault: false, reason: `${e.kernel} failed to compile: ${e.message}` });
    return gpu.pipelines.plan(() => recordEveryStage(gpu, model, sampler), onCompiled);
  }
}

/** One dry recording of every stage at the shapes the model runs (the plan's `record`). */
function recordEveryStage(gpu: Gpu, model: VisionLanguageModel, sampler: Sampler): void {
  // Planning records nothing, but the mask kernel's wrapper checks a real tensor's shape.
  const mask = Tensor.empty(gpu, [Math.ceil(model.config.text.vocabSize / 32)], 'u32', 'pipeline-plan.mask');
  const enc = gpu.device.createCommandEncoder({ label: 'pipeline-plan' });
  const pass = enc.beginComputePass({ label: 'pipeline-plan' });
  const ctx = { gpu, pass };
  try {
    const v = model.config.vision;
    // The largest square image the patch budget takes (the encoder's kernels do not depend on
    // the grid's shape, only on the head and hidden sizes), and an image of one token, whose
    // projection is a matrix-vector product.
    const side = Math.min(v.imageSize / v.patchSize, Math.floor(Math.sqrt(model.limits.maxPatches)));
    for (const px of new Set([side * v.patchSize, model.tokenPixels])) {
      const image = { pixels: new Float32Array(3 * px * px), height: px, width: px };
      const enc2 = model.vision.encode(ctx, [image]);
      model.projector.project(ctx, enc2.out, enc2.patches, enc2.grids);
    }
    const dec = model.decoder;
    for (const T of new Set([1, Math.min(2, dec.maxChunk), dec.maxChunk])) {
      dec.embedTokens(ctx, new Uint32Array(T));
      dec.layers(ctx, T, 0, model.cache);
      dec.finalNorm(ctx, T);
    }
    // Decode attention specialises on its chunk capacity, which grows with the context: one
    // step at each power-of-two context covers every variant up to maxContext.
    for (let n = 1; n <= dec.maxContext; n *= 2) dec.layers(ctx, 1, n - 1, model.cache);
    dec.finalNorm(ctx, 1);
    dec.lastLogits(ctx);
    // A decode step's final norm folded into lm_head, and a response_format's mask.
    dec.decodeLogits(ctx);
    maskLogits(ctx, dec.logits, mask, model.config.text.vocabSize);
    const greedy = { temperature: 0, topK: 1, topP: 1, repetitionPenalty: 1.1, u: 0 };
    sampler.record(ctx, dec.logits, greedy);
    sampler.record(ctx, dec.logits, { ...greedy, temperature: 1, topK: TOPK_MAX, topP: 0.9, u: 0.5 });
  } finally {
    pass.end();
    mask.destroy();
  }
}

/**
 * Runs the model once for real on the smallest input (one image of one token, one decode step,
 * both samplers) and forgets it: what the GPU and the driver do on first use besides compiling
 * (lazy buffer clears, first bind groups, first mapping) happens here, during load, not in the
 * first answer. The KV cache is left empty.
 */
export async function warmModel(gpu: Gpu, model: VisionLanguageModel, sampler: Sampler): Promise<void> {
  const px = model.tokenPixels;
  const t = model.config.tokens;
  const ids = [t.bos, t.inst, ...imageTokenIds(1, 1, t), t.instEnd];
  if (ids.length + 1 > model.limits.maxContext) return; // a context too small to hold it: skip
  const image = { pixels: new Float32Array(3 * px * px), height: px, width: px };
  await model.prefill({ ids, images: [{ start: 2, rows: 1, cols: 1, image, key: 'warm-up' }] });
  model.append(t.bos);
  const enc = gpu.device.createCommandEncoder({ label: 'warm-up' });
  const pass = enc.beginComputePass({ label: 'warm-up' });
  sampler.record({ gpu, pass }, model.logits, { temperature: 0, topK: 1, topP: 1, repetitionPenalty: 1, u: 0 });
  sampler.record({ gpu, pass }, model.logits, { temperature: 1, topK: TOPK_MAX, topP: 0.9, repetitionPenalty: 1.1, u: 0.5 });
  pass.end();
  gpu.submit([enc.finish()]);
  await sampler.read();
  model.cache.truncate(0);
}
