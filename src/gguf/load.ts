/**
 * `loadPixtral({ url: '...-Q4_K_M.gguf', mmproj: '...mmproj-f16.gguf' })`: a llama.cpp GGUF pair
 * straight from any host with Range and CORS (Hugging Face serves both). Both headers first
 * (model type, quant mix, tokenizer: every check before a weight byte), then each tensor by its
 * own Range request onto the GPU, kept in its stored block format (`GgufWeights`).
 * Not yet here (README, "GGUF"): the IndexedDB/disk cache, resume and whole-file SHA-256 that
 * converted models get; local paths in Node.
 */
import { FormatError } from '../errors.js';
import { Gpu } from '../gpu/device.js';
import { checkSpecialIds } from '../text/tokenizer.js';
import { containProgress } from '../weights/progress.js';
import type { LoadedModel } from '../engine/load.js';
import { createModelParts, modelInfo } from '../engine/model-parts.js';
import type { LoadOptions } from '../engine/types.js';
import { GgufWeights } from './gpu-weights.js';
import { ggufModel } from './mapping.js';
import { readGgufHeader } from './reader.js';
import { urlSource } from './source.js';
import { ggufChatLayout, ggufTokenizer } from './tokenizer.js';

/** Whether load options name a GGUF pair (an `mmproj` is given). */
export function isGgufLoad(opts: LoadOptions): boolean {
  return opts.mmproj !== undefined;
}

export async function loadGgufModel(opts: LoadOptions): Promise<LoadedModel> {
  if (opts.offline) throw new FormatError('GGUF files are not cached yet: offline loading needs a converted model');
  const open = opts.openGguf ?? ((url: string) => urlSource(url, { fetch: opts.fetch }));
  const sources = { text: open(opts.url), mmproj: open(opts.mmproj!) };
  const [text, mmproj] = await Promise.all([readGgufHeader(sources.text, { signal: opts.signal }), readGgufHeader(sources.mmproj, { signal: opts.signal })]);
  const gm = ggufModel(text, mmproj);
  const config = gm.config;
  // No chat template in the file: Pixtral's v3 for a Pixtral projector, v7 for mistral3's.
  const tokenizer = ggufTokenizer(text, { version: ggufChatLayout(text) ?? (config.modelType === 'pixtral' ? 'v3' : 'v7') });
  if (tokenizer.vocabSize !== config.text.vocabSize) {
    throw new FormatError(`${opts.url}: ${tokenizer.vocabSize} tokens but token_embd has ${config.text.vocabSize} rows`);
  }
  checkSpecialIds(config.tokens, tokenizer.specialIds, `${opts.url} (tokenizer.ggml.*)`);
  const totalBytes = gm.tensors.reduce((a, t) => a + t.info.byteLength, 0);
  const progress = containProgress(opts.onProgress);
  let loadedBytes = 0;
  const event = (phase: 'download' | 'done') =>
    progress?.({ phase, loadedBytes, totalBytes, shardIndex: -1, shardCount: 2, bytesPerSecond: 0 });

  const gpu = await Gpu.create(opts.gpu);
  try {
    const weights = await GgufWeights.upload(gpu, gm, sources, {
      signal: opts.signal,
      onTensor: (_, bytes) => {
        loadedBytes += bytes;
        event('download');
      },
    });
    const quantized = gm.tensors.some((t) => t.file === 'text' && t.info.typeName !== 'F32' && t.info.typeName !== 'F16');
    const kvCache = opts.kvCache ?? (quantized ? 'f16' : 'f32');
    const parts = createModelParts(gpu, config, weights, tokenizer, { ...opts, kvCache });
    await gpu.sync();
    event('done');
    const name = text.metadata.get('general.name');
    const info = modelInfo(gpu, parts.model, kvCache, { name: typeof name === 'string' ? name : opts.url, dtype: 'gguf', weightBytes: weights.byteLength, fromCache: false });
    // Nothing cached, so no hold on stored files to release.
    return { gpu, weights, tokenizer, ...parts, info, files: {} };
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}
