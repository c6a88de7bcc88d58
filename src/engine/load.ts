/**
 * Loading: manifest and shards (`src/weights`) -> GPU weights -> the model, its tokenizer and
 * sampler, and the `ModelInfo` reported to callers. `release` frees all of it.
 */
import { Gpu } from '../gpu/device.js';
import type { Tensor } from '../gpu/tensor.js';
import { FormatError } from '../errors.js';
import { loadModelFiles } from '../weights/fetch.js';
import { ProgressTracker } from '../weights/progress.js';
import { uploadModel, type GpuWeights } from '../weights/upload.js';
import { segmentBytes } from '../weights/manifest.js';
import { UploadedWeights } from '../model/gpu-weights.js';
import type { ModelWeightMap, VisionLanguageModel } from '../model/vlm.js';
import type { Sampler } from '../kernels/sampling.js';
import { prepareModel } from './prepare.js';
import { checkSpecialIds, loadTokenizer, type Tokenizer } from '../text/tokenizer.js';
import type { Grammars } from '../grammar/constraint.js';
import { createModelParts, modelInfo, placeVisionWeights } from './model-parts.js';
import { isGgufLoad, loadGgufModel } from '../gguf/load.js';
import { convertedGgufQuantized, isConvertedGguf, uploadConvertedGguf } from '../gguf/converted.js';
import type { OpenedModel } from '../weights/source.js';
import type { LoadOptions, ModelInfo } from './types.js';

/** Everything one loaded model holds; owned by the engine. */
export interface LoadedModel {
  gpu: Gpu;
  /** The converted model's weights, or a GGUF pair's (`GgufWeights`). */
  weights: Pick<GpuWeights, 'byteLength' | 'destroy'>;
  model: VisionLanguageModel;
  tokenizer: Tokenizer;
  sampler: Sampler;
  penalty: Tensor; // [maxContext] u32: ids the repetition penalty applies to
  /** Response formats compiled against this vocabulary (on first use). */
  grammars: Grammars;
  allowed: Tensor; // [ceil(V / 32)] u32: this step's allowed-token bitmask, when a grammar is on
  info: ModelInfo;
  /** This context's hold on the cached model files (a shared Web Lock); released with the model. */
  files: Pick<OpenedModel, 'release'>;
}

/** Loads a converted model onto a new GPU device. */
export async function loadModel(opts: LoadOptions): Promise<LoadedModel> {
  if (isGgufLoad(opts)) return loadGgufModel(opts);
  const open = opts.openModel ?? loadModelFiles;
  const files = await open({
    url: opts.url, offline: opts.offline, signal: opts.signal, onProgress: opts.onProgress, fetch: opts.fetch,
    verify: opts.verify, stallTimeoutMs: opts.stallTimeoutMs,
  });
  const m = files.manifest;
  let gpu: Gpu | undefined;
  try {
    // The tokenizer before the GPU: a manifest whose token ids disagree with it fails here.
    const tokBytes = await files.files.readTokenizer();
    if (!tokBytes) throw new FormatError(`${opts.url}: the model has no tokenizer file`);
    // The manifest's version picks the chat layout (a tokenizer.json names none of its own).
    const tokenizer = loadTokenizer(tokBytes, { vocabSize: m.config.text.vocabSize, version: m.tokenizer?.version });
    checkSpecialIds(m.config.tokens, tokenizer.specialIds, `${opts.url} (manifest.json)`);
    gpu = await Gpu.create(opts.gpu);
    // A model converted from a GGUF pair keeps ggml's blocks: the GGUF path's weights and KV rule.
    const gguf = isConvertedGguf(m);
    let weights: LoadedModel['weights'];
    let map: ModelWeightMap;
    if (gguf) {
      // Upload progress in bytes, as uploadModel reports it for the other dtypes.
      const tracker = new ProgressTracker({ totalBytes: m.tensors.reduce((a, t) => a + segmentBytes(t.data), 0), shardCount: m.shards.length, onProgress: opts.onProgress });
      const g = gpu;
      weights = map = await placeVisionWeights(g, opts, () => uploadConvertedGguf(files.files, g, { signal: opts.signal, onBytes: (n) => tracker.add('upload', -1, n) }));
      tracker.phase('upload'); // the last, unthrottled: every byte uploaded
    } else {
      const g = gpu;
      const uploaded = await placeVisionWeights(g, opts, () => uploadModel(files.files, g, { signal: opts.signal, onProgress: opts.onProgress }));
      weights = uploaded;
      map = new UploadedWeights(gpu, uploaded);
    }
    const kvCache = opts.kvCache ?? (m.dtype === 'q4' || (gguf && convertedGgufQuantized(m)) ? 'f16' : 'f32');
    const parts = createModelParts(gpu, m.config, map, tokenizer, { ...opts, kvCache });
    const { model, sampler } = parts;
    // Every pipeline now, in parallel, so the first answer does not pay for compilation.
    await prepareModel(gpu, model, sampler, { bytes: weights.byteLength, shardCount: m.shards.length, onProgress: opts.onProgress });
    const info = modelInfo(gpu, model, kvCache, { name: m.name, dtype: m.dtype, weightBytes: weights.byteLength, fromCache: files.fromCache });
    return { gpu, weights, tokenizer, ...parts, info, files };
  } catch (e) {
    gpu?.destroy();
    void files.release?.();
    throw e;
  }
}

/**
 * Frees the model's GPU memory and its device at once, then gives up this context's hold on its
 * cached files; settles when that lock is free (so a delete right after succeeds).
 */
export function releaseModel(l: LoadedModel): Promise<void> {
  l.model.destroy();
  l.weights.destroy();
  l.sampler.destroy();
  l.penalty.destroy();
  l.allowed.destroy();
  l.gpu.destroy();
  return l.files.release?.() ?? Promise.resolve();
}
