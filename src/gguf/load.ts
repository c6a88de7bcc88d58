/**
 * `loadPixtral({ url: '...-Q4_K_M.gguf', mmproj: '...mmproj-f16.gguf' })`: a llama.cpp GGUF pair
 * straight from any host with Range and CORS (Hugging Face serves both), through the model cache
 * (`cache.ts`: the browser's IndexedDB store by default, Node's disk cache through
 * `LoadOptions.ggufCache`): both headers are checked (model type, quant mix, tokenizer) before any
 * weight byte, the files are downloaded once in chunks (resumable, SHA-256 checked) and later
 * loads, offline ones too, read them from the cache. `openGguf` instead reads the files where they
 * are (Node's local paths, a picked `File`), with nothing cached. Then every tensor goes onto the
 * GPU in its stored block format (`GgufWeights`), neighbours read together.
 */
import { FormatError } from '../errors.js';
import { Gpu } from '../gpu/device.js';
import { checkSpecialIds, type Tokenizer } from '../text/tokenizer.js';
import { containProgress, ProgressTracker } from '../weights/progress.js';
import { prepareModel } from '../engine/prepare.js';
import { idbGgufCache } from '../weights/gguf-store.js';
import type { LoadedModel } from '../engine/load.js';
import { createModelParts, modelInfo, placeVisionWeights } from '../engine/model-parts.js';
import type { LoadOptions } from '../engine/types.js';
import { openGgufPair } from './cache.js';
import { GgufWeights } from './gpu-weights.js';
import { ggufModel, type GgufModel } from './mapping.js';
import { readGgufHeader, type GgufHeader } from './reader.js';
import type { ByteSource } from './source.js';
import { ggufChatLayout, ggufTokenizer } from './tokenizer.js';

/** Whether load options name a GGUF pair (an `mmproj` is given). */
export function isGgufLoad(opts: LoadOptions): boolean {
  return opts.mmproj !== undefined;
}

/** The model and tokenizer two headers describe; FormatError/IntegrityError when they do not fit. */
function describe(opts: LoadOptions, text: GgufHeader, mmproj: GgufHeader): { gm: GgufModel; tokenizer: Tokenizer } {
  const gm = ggufModel(text, mmproj);
  const config = gm.config;
  // No chat template in the file: Pixtral's v3 for a Pixtral projector, v7 for mistral3's.
  const tokenizer = ggufTokenizer(text, { version: ggufChatLayout(text) ?? (config.modelType === 'pixtral' ? 'v3' : 'v7') });
  if (tokenizer.vocabSize !== config.text.vocabSize) {
    throw new FormatError(`${opts.url}: ${tokenizer.vocabSize} tokens but token_embd has ${config.text.vocabSize} rows`);
  }
  checkSpecialIds(config.tokens, tokenizer.specialIds, `${opts.url} (tokenizer.ggml.*)`);
  return { gm, tokenizer };
}

/** Both files' headers and byte sources: read in place (`openGguf`) or through the cache. */
async function openPair(opts: LoadOptions): Promise<{
  headers: { text: GgufHeader; mmproj: GgufHeader }; sources: { text: ByteSource; mmproj: ByteSource }; fromCache: boolean; release?: () => Promise<void>;
}> {
  if (opts.openGguf) {
    const sources = { text: opts.openGguf(opts.url), mmproj: opts.openGguf(opts.mmproj!) };
    const [text, mmproj] = await Promise.all([readGgufHeader(sources.text, { signal: opts.signal }), readGgufHeader(sources.mmproj, { signal: opts.signal })]);
    return { headers: { text, mmproj }, sources, fromCache: false };
  }
  return openGgufPair(opts.ggufCache ?? idbGgufCache(), {
    url: opts.url, mmproj: opts.mmproj!, offline: opts.offline, signal: opts.signal, onProgress: opts.onProgress, fetch: opts.fetch,
    stallTimeoutMs: opts.stallTimeoutMs, chunkBytes: opts.ggufChunkBytes, check: (text, mmproj) => void describe(opts, text, mmproj),
  });
}

export async function loadGgufModel(opts: LoadOptions): Promise<LoadedModel> {
  const pair = await openPair(opts);
  let gpu: Gpu | undefined;
  try {
    const { gm, tokenizer } = describe(opts, pair.headers.text, pair.headers.mmproj);
    const config = gm.config;
    const progress = new ProgressTracker({
      totalBytes: gm.tensors.reduce((a, t) => a + t.info.byteLength, 0), shardCount: 2, onProgress: containProgress(opts.onProgress),
    });
    gpu = await Gpu.create(opts.gpu);
    const g = gpu;
    const weights = await placeVisionWeights(g, opts, () => GgufWeights.upload(g, gm, pair.sources, {
      signal: opts.signal,
      onTensor: (t, bytes) => progress.add('upload', t.file === 'text' ? 0 : 1, bytes),
    }));
    const quantized = gm.tensors.some((t) => t.file === 'text' && t.info.typeName !== 'F32' && t.info.typeName !== 'F16');
    const kvCache = opts.kvCache ?? (quantized ? 'f16' : 'f32');
    const parts = createModelParts(gpu, config, weights, tokenizer, { ...opts, kvCache });
    // Every pipeline now, as for converted models: the first answer does not pay for compilation.
    await prepareModel(gpu, parts.model, parts.sampler, { bytes: weights.byteLength, shardCount: 2, onProgress: opts.onProgress });
    const name = pair.headers.text.metadata.get('general.name');
    const info = modelInfo(gpu, parts.model, kvCache, {
      name: typeof name === 'string' ? name : opts.url, dtype: 'gguf', weightBytes: weights.byteLength, fromCache: pair.fromCache,
    });
    return { gpu, weights, tokenizer, ...parts, info, files: { release: pair.release } };
  } catch (e) {
    gpu?.destroy();
    void pair.release?.();
    throw e;
  }
}
