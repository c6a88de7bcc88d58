/**
 * What every model source shares once its weights are on the GPU (a converted model in
 * `load.ts`, a GGUF pair in `src/gguf/load.ts`): the model over its KV cache, the sampler, the
 * per-request buffers, and the `ModelInfo` callers see.
 */
import type { Gpu } from '../gpu/device.js';
import { placeOnHost } from '../gpu/host-buffer.js';
import { isVisionLayerLabel } from '../model/vision-slots.js';
import { Tensor } from '../gpu/tensor.js';
import { Sampler } from '../kernels/sampling.js';
import { subgroupMatrixIsDefault } from '../kernels/subgroup-matrix.js';
import { defaultAttentionPrefillVariant } from '../kernels/attention.js';
import { VisionLanguageModel, type ModelWeightMap } from '../model/vlm.js';
import { Grammars } from '../grammar/constraint.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { ModelConfig } from '../config.js';
import type { LoadedModel } from './load.js';
import type { LoadOptions, ModelInfo } from './types.js';

/** The parts every model source shares once its weights are on the GPU. */
export type ModelParts = Pick<LoadedModel, 'model' | 'sampler' | 'penalty' | 'grammars' | 'allowed'>;

/**
 * Weights on the GPU -> the model over its KV cache, the sampler and the per-request buffers
 * (repetition-penalty ids, the grammar's allowed-token mask): the same for a converted model and
 * a GGUF pair.
 */
export function createModelParts(
  gpu: Gpu,
  config: ModelConfig,
  weights: ModelWeightMap,
  tokenizer: Tokenizer,
  opts: Pick<LoadOptions, 'maxContext' | 'maxPatches'> & { kvCache: 'f16' | 'f32' },
): ModelParts {
  const model = new VisionLanguageModel(gpu, config, weights, { maxContext: opts.maxContext, maxPatches: opts.maxPatches, kvCache: opts.kvCache });
  const sampler = new Sampler(gpu, config.text.vocabSize);
  const penalty = Tensor.empty(gpu, [model.limits.maxContext], 'u32', 'penalty-ids');
  const grammars = new Grammars(tokenizer, config.tokens.eos);
  const allowed = Tensor.empty(gpu, [Math.ceil(config.text.vocabSize / 32)], 'u32', 'allowed-tokens');
  return { model, sampler, penalty, grammars, allowed };
}

/**
 * Runs a weights upload with the vision transformer's layers in host memory when the load
 * options ask for it (`visionWeights: 'host'`), on the GPU otherwise.
 */
export function placeVisionWeights<T>(gpu: Gpu, opts: Pick<LoadOptions, 'visionWeights'>, upload: () => Promise<T>): Promise<T> {
  return opts.visionWeights === 'host' ? placeOnHost(gpu, isVisionLayerLabel, upload) : upload();
}

/** What callers are told about a loaded model. */
export function modelInfo(
  gpu: Gpu,
  model: VisionLanguageModel,
  kvCache: 'f16' | 'f32',
  meta: Pick<ModelInfo, 'name' | 'dtype' | 'weightBytes' | 'fromCache'>,
): ModelInfo {
  return {
    ...meta,
    modelType: model.config.modelType,
    config: model.config,
    maxContext: model.limits.maxContext,
    kvCache,
    maxPatches: model.limits.maxPatches,
    visionWeights: model.vision.slots ? 'host' : 'gpu',
    tokenPixels: model.tokenPixels,
    adapter: {
      vendor: gpu.adapterInfo.vendor,
      architecture: gpu.adapterInfo.architecture,
      description: gpu.adapterInfo.description,
      f16: gpu.features.f16,
      prefillMatmul: subgroupMatrixIsDefault(gpu) ? 'subgroupMatrix' : 'tiled',
      prefillAttention: defaultAttentionPrefillVariant(gpu, model.config.text.headDim),
    },
  };
}

