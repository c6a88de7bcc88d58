/**
 * The main dimensions of a model config as `info` prints them (`--json` fields `vision`, `text`,
 * `spatialMerge`, `kvBytesPerToken`): one shape for converted models and GGUF pairs.
 */
import type { ModelConfig } from '../src/config.js';
import { kvCacheBytes } from '../src/presets.js';

export function modelDimensions(c: ModelConfig) {
  return {
    vision: { hidden: c.vision.hiddenSize, layers: c.vision.numLayers, heads: c.vision.numHeads, patch: c.vision.patchSize, imageSize: c.vision.imageSize },
    text: {
      hidden: c.text.hiddenSize, layers: c.text.numLayers, heads: c.text.numHeads, kvHeads: c.text.numKvHeads, headDim: c.text.headDim,
      vocab: c.text.vocabSize, maxPositions: c.text.maxPositionEmbeddings,
    },
    spatialMerge: c.projector.spatialMergeSize,
    kvBytesPerToken: { f32: kvCacheBytes(c, 1, 'f32'), f16: kvCacheBytes(c, 1, 'f16') },
  };
}
