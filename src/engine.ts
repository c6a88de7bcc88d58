/**
 * The engine: loads a converted model onto the GPU and runs chat and generation. It has the
 * same interface in a Web Worker (`worker.ts` only exposes it through comlink) and in-thread
 * (tests call it directly). One model, one queue: calls are serialised.
 *
 * Data flow of one chat turn: messages -> images decoded and preprocessed (`src/image`) ->
 * prompt ids with image-token grids (`src/text/prompt.ts`) -> prefill over the KV cache, reusing
 * the cached prefix (`src/model/vlm.ts`) -> per step: GPU sampling reads back one token id
 * (`src/kernels/sampling.ts`) -> streaming UTF-8-safe detokenisation -> stop strings -> text.
 */
import { Gpu, type GpuOptions } from './gpu/device.js';
import { Tensor, writeBuffer } from './gpu/tensor.js';
import { record } from './gpu/kernel.js';
import { AbortError, ContextLengthError, DisposedError, FormatError, LimitError, throwIfAborted } from './errors.js';
import type { ModelConfig } from './config.js';
import { loadModelFiles } from './weights/fetch.js';
import { uploadModel, type GpuWeights } from './weights/upload.js';
import type { ProgressCallback } from './weights/progress.js';
import { UploadedWeights } from './model/gpu-weights.js';
import { VisionLanguageModel, type PromptImage } from './model/vlm.js';
import { resolveSampling, type SamplingOptions } from './model/sampler.js';
import { seededUniforms } from './util/random.js';
import { StopStringFilter } from './model/stop.js';
import { Sampler, TOPK_MAX } from './kernels/sampling.js';
import { checkTokenIds } from './kernels/embedding.js';
import { loadTokenizer, type Tokenizer } from './text/tokenizer.js';
import { renderPrompt, type GridPart, type PromptMessage, type TextPart } from './text/prompt.js';
import { preprocessImage, preprocessOptionsFor } from './image/preprocess.js';
import type { ImageInput } from './image/decode.js';

export interface LoadOptions {
  /** Base URL of a converted model (folder holding manifest.json). */
  url: string;
  /** Never touch the network: load from the IndexedDB cache only. */
  offline?: boolean;
  /** KV-cache length to allocate (capped by the model and the adapter; the cap is reported). */
  maxContext?: number;
  /**
   * KV-cache element type. Default: 'f16' for q4 models (half the memory: Pixtral-12B at 8k
   * context needs 1.34 GB instead of 2.7 GB; logits move by ~1e-3), 'f32' otherwise.
   */
  kvCache?: 'f16' | 'f32';
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  gpu?: GpuOptions;
  /** Replaces fetch (tests, auth headers). */
  fetch?: typeof fetch;
}

export interface ModelInfo {
  name: string;
  modelType: ModelConfig['modelType'];
  /** Storage dtype of the decoder's linear weights. */
  dtype: 'q4' | 'f16' | 'f32';
  config: ModelConfig;
  /** Context tokens actually allocated. */
  maxContext: number;
  /** KV-cache element type in use. */
  kvCache: 'f16' | 'f32';
  /** Patches of all images of one prompt. */
  maxPatches: number;
  /** Pixels per side of one image token (patch x merge). */
  tokenPixels: number;
  /** Bytes of weights on the GPU. */
  weightBytes: number;
  adapter: { vendor: string; architecture: string; description: string; f16: boolean };
  fromCache: boolean;
}

export type ChatContent = string | (TextPart | { type: 'image'; image: ImageInput })[];

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: ChatContent;
}

export interface GenerationOptions extends SamplingOptions {
  /** Tokens to generate at most (default 256; clipped to the context left). */
  maxTokens?: number;
  /** Stop when the text contains one of these (not included in the output). */
  stop?: string[];
  /** Stops within one decode step. */
  signal?: AbortSignal;
}

export interface ChatOptions extends GenerationOptions {
  /** Lower the longest image edge (pixels) to spend fewer image tokens. */
  longestEdge?: number;
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'abort';

export interface GenerationStats {
  promptTokens: number;
  imageTokens: number;
  /** Prompt positions reused from the KV cache (earlier turns, images). */
  reusedTokens: number;
  imagesEncoded: number;
  generatedTokens: number;
  imageEncodeMs: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  finishReason: FinishReason;
}

/** A finished chat turn: the whole answer (also streamed through `onDelta`) and its stats. */
export interface ChatResult {
  text: string;
  stats: GenerationStats;
}

export interface GenerateRequest extends GenerationOptions {
  /** Already tokenised, image tokens included. */
  inputIds: number[];
  /** Normalised CHW pixels, sizes multiples of the token size, in prompt order. */
  images?: { pixels: Float32Array; height: number; width: number }[];
  maxNewTokens?: number;
  /** Logits of every prompt position [promptTokens, V] (evaluation). */
  returnLogits?: boolean;
}

export interface GenerateResult {
  tokenIds: number[];
  logits?: Float32Array;
  stats: GenerationStats;
}

interface Loaded {
  gpu: Gpu;
  weights: GpuWeights;
  model: VisionLanguageModel;
  tokenizer: Tokenizer;
  sampler: Sampler;
  penalty: Tensor; // [maxContext] u32: ids the repetition penalty applies to
  info: ModelInfo;
  /** Token ids of the last answer, to render it exactly as generated in the next turn. */
  lastAnswer: { text: string; ids: number[] } | null;
}

/** FNV-1a over the pixels' bits: names an image's content for KV-cache reuse. */
function pixelKey(p: { pixels: Float32Array; height: number; width: number }): string {
  const u = new Uint32Array(p.pixels.buffer, p.pixels.byteOffset, p.pixels.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return `img${p.height}x${p.width}:${(h >>> 0).toString(16)}`;
}

export class Engine {
  private loaded: Loaded | null = null;
  private disposed = false;
  private queue: Promise<unknown> = Promise.resolve();

  /** Serialises every call on the one model. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private need(): Loaded {
    if (this.disposed) throw new DisposedError();
    if (!this.loaded) throw new LimitError('no model loaded: call load() first');
    if (this.loaded.gpu.isLost) throw this.loaded.gpu.lost;
    return this.loaded;
  }

  /**
   * Loads a converted model. `onProgress` and `signal` may also be passed as separate
   * arguments (comlink forwards callbacks and signals only as top-level arguments).
   */
  load(options: LoadOptions, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<ModelInfo> {
    const opts = { ...options, onProgress: onProgress ?? options.onProgress, signal: signal ?? options.signal };
    return this.run(async () => {
      if (this.disposed) throw new DisposedError();
      this.release();
      const files = await loadModelFiles({ url: opts.url, offline: opts.offline, signal: opts.signal, onProgress: opts.onProgress, fetch: opts.fetch });
      const m = files.manifest;
      const gpu = await Gpu.create(opts.gpu);
      try {
        const weights = await uploadModel(files.files, gpu, { signal: opts.signal, onProgress: opts.onProgress });
        const tokBytes = await files.files.readTokenizer();
        if (!tokBytes) throw new FormatError(`${opts.url}: the model has no tokenizer file`);
        const tokenizer = loadTokenizer(tokBytes, { vocabSize: m.config.text.vocabSize });
        const kvCache = opts.kvCache ?? (m.dtype === 'q4' ? 'f16' : 'f32');
        const model = new VisionLanguageModel(gpu, m.config, new UploadedWeights(gpu, weights), { maxContext: opts.maxContext, kvCache });
        const sampler = new Sampler(gpu, m.config.text.vocabSize);
        const penalty = Tensor.empty(gpu, [model.limits.maxContext], 'u32', 'penalty-ids');
        await gpu.sync();
        const info: ModelInfo = {
          name: m.name,
          modelType: m.config.modelType,
          dtype: m.dtype,
          config: m.config,
          maxContext: model.limits.maxContext,
          kvCache,
          maxPatches: model.limits.maxPatches,
          tokenPixels: model.tokenPixels,
          weightBytes: weights.byteLength,
          adapter: {
            vendor: gpu.adapterInfo.vendor,
            architecture: gpu.adapterInfo.architecture,
            description: gpu.adapterInfo.description,
            f16: gpu.features.f16,
          },
          fromCache: files.fromCache,
        };
        this.loaded = { gpu, weights, model, tokenizer, sampler, penalty, info, lastAnswer: null };
        return info;
      } catch (e) {
        gpu.destroy();
        throw e;
      }
    });
  }

  info(): ModelInfo {
    return this.need().info;
  }

  /** Tokenises text (no special tokens). */
  async tokenize(text: string): Promise<number[]> {
    return this.need().tokenizer.encode(text);
  }

  /** Preprocesses an image for this model: pixels, size, token grid and token count. */
  async preprocess(image: ImageInput, opts: { longestEdge?: number } = {}) {
    const l = this.need();
    return preprocessImage(image, preprocessOptionsFor(l.model.config, opts));
  }

  /**
   * One chat turn: streams text deltas to `onDelta`, resolves with the whole answer and the
   * stats. A follow-up call whose messages extend the previous conversation reuses the KV cache.
   */
  chat(
    messages: ChatMessage[],
    options: ChatOptions = {},
    onDelta: (text: string) => void = () => {},
    signal?: AbortSignal,
  ): Promise<ChatResult> {
    const opts = { ...options, signal: signal ?? options.signal };
    return this.run(async () => {
      const l = this.need();
      throwIfAborted(opts.signal);
      const sampling = resolveSampling(opts);
      // Images first (CPU work only), then the prompt: all before any GPU work.
      const images: { part: GridPart; pre: Awaited<ReturnType<typeof preprocessImage>> }[] = [];
      const prepOpts = preprocessOptionsFor(l.model.config, { longestEdge: opts.longestEdge });
      const prompt: PromptMessage[] = [];
      for (const m of messages) {
        if (typeof m.content === 'string') {
          prompt.push({ role: m.role, content: m.content });
          continue;
        }
        const parts: (TextPart | GridPart)[] = [];
        for (const p of m.content) {
          if (p.type === 'text') parts.push(p);
          else {
            const pre = await preprocessImage(p.image, prepOpts);
            const part: GridPart = { type: 'image', rows: pre.rows, cols: pre.cols };
            images.push({ part, pre });
            parts.push(part);
          }
          throwIfAborted(opts.signal);
        }
        prompt.push({ role: m.role, content: parts });
      }
      const last = l.lastAnswer;
      const encode = (text: string) => (last && text === last.text ? last.ids : l.tokenizer.encode(text));
      const rendered = renderPrompt(prompt, l.tokenizer.version, l.tokenizer.specialIds, encode);
      const promptImages: PromptImage[] = rendered.images.map((r, i) => {
        const pre = images[i]!.pre;
        return { start: r.start, rows: r.rows, cols: r.cols, image: pre, key: pixelKey(pre) };
      });
      const maxTokens = opts.maxTokens ?? 256;
      const ids: number[] = [];
      const decoder = l.tokenizer.createStreamDecoder();
      const stop = new StopStringFilter(opts.stop ?? []);
      let answer = '';
      const stats = await this.decodeLoop(l, rendered.ids, promptImages, sampling, maxTokens, opts.signal, false, (tok) => {
        ids.push(tok);
        const text = stop.push(decoder.push(tok));
        answer += text;
        if (text) onDelta(text);
        return stop.done;
      });
      const tail = stop.push(decoder.flush()) + stop.flush();
      if (tail) {
        answer += tail;
        onDelta(tail);
      }
      l.lastAnswer = { text: answer, ids };
      return { text: answer, stats: stats.stats };
    });
  }

  /** Generation from token ids and preprocessed images, for evaluation and outside checks. */
  generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    const req = { ...request, signal: signal ?? request.signal };
    return this.run(async () => {
      const l = this.need();
      const sampling = resolveSampling(req);
      const t = l.model.config.tokens;
      const images: PromptImage[] = [];
      let from = 0;
      for (const [i, im] of (req.images ?? []).entries()) {
        const start = req.inputIds.indexOf(t.img, from);
        const px = l.model.tokenPixels;
        if (start < 0) throw new FormatError(`image ${i} has no [IMG] tokens in inputIds`);
        if (im.height % px || im.width % px) throw new FormatError(`image ${i}: ${im.width}x${im.height} is not a multiple of ${px}`);
        const rows = im.height / px;
        const cols = im.width / px;
        images.push({ start, rows, cols, image: im, key: pixelKey(im) });
        from = start + rows * (cols + 1);
      }
      const tokenIds: number[] = [];
      const out = await this.decodeLoop(l, req.inputIds, images, sampling, req.maxNewTokens ?? req.maxTokens ?? 16, req.signal, !!req.returnLogits, (tok) => {
        tokenIds.push(tok);
        return false;
      });
      l.lastAnswer = null;
      return { tokenIds, logits: out.logits, stats: out.stats };
    });
  }

  /**
   * Prefill + decode. `emit` gets each sampled token that is not EOS and returns true to stop.
   * The context budget is checked before any GPU work.
   */
  private async decodeLoop(
    l: Loaded,
    ids: number[],
    images: PromptImage[],
    sampling: ReturnType<typeof resolveSampling>,
    maxTokens: number,
    signal: AbortSignal | undefined,
    returnLogits: boolean,
    emit: (token: number) => boolean,
  ): Promise<{ stats: GenerationStats; logits?: Float32Array }> {
    const model = l.model;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new LimitError(`maxTokens must be a non-negative integer (got ${maxTokens})`);
    checkTokenIds(ids, model.config.text.vocabSize);
    const imageTokens = images.reduce((a, im) => a + im.rows * (im.cols + 1), 0);
    if (ids.length + 1 > model.limits.maxContext) {
      throw new ContextLengthError(ids.length + 1, model.limits.maxContext, `${ids.length} prompt tokens (${imageTokens} for images) and at least one to generate`);
    }
    const budget = Math.min(maxTokens, model.limits.maxContext - ids.length);
    throwIfAborted(signal);
    const pre = await model.prefill({ ids, images }, { returnLogits, signal });
    const history = ids.slice();
    writeBuffer(l.gpu, l.penalty.buffer, 0, Uint32Array.from(history));
    const uniform = seededUniforms(sampling.seed);
    let finish: FinishReason = 'length';
    let generated = 0;
    const t0 = performance.now();
    for (let step = 0; step < budget; step++) {
      if (signal?.aborted) {
        finish = 'abort';
        break;
      }
      const u = uniform();
      // topK 0 ("off") keeps the TOPK_MAX most likely tokens: the GPU sampler's candidate bound.
      const gpuOpts = { ...sampling, temperature: sampling.greedy ? 0 : sampling.temperature, topK: sampling.topK || TOPK_MAX, u };
      record(l.gpu, 'sample', (ctx) =>
        l.sampler.record(ctx, model.logits, gpuOpts, sampling.repetitionPenalty !== 1 ? { ids: l.penalty, count: history.length } : undefined),
      );
      const { token } = await l.sampler.read();
      if (token === model.config.tokens.eos) {
        finish = 'eos';
        break;
      }
      generated++;
      if (emit(token)) {
        finish = 'stop';
        break;
      }
      if (step + 1 < budget) {
        writeBuffer(l.gpu, l.penalty.buffer, history.length * 4, Uint32Array.of(token));
        history.push(token);
        model.append(token);
      }
    }
    const decodeMs = performance.now() - t0;
    if (finish === 'abort' && generated === 0 && signal?.aborted) {
      // Nothing was produced: surface the abort as an error, like fetch does.
      throw new AbortError();
    }
    return {
      logits: pre.logits,
      stats: {
        promptTokens: ids.length,
        imageTokens,
        reusedTokens: pre.reused,
        imagesEncoded: pre.imagesEncoded,
        generatedTokens: generated,
        imageEncodeMs: pre.imageEncodeMs,
        prefillMs: pre.prefillMs,
        prefillTokensPerSecond: pre.ran / Math.max(pre.prefillMs / 1000, 1e-9),
        decodeMs,
        decodeTokensPerSecond: generated / Math.max(decodeMs / 1000, 1e-9),
        finishReason: finish,
      },
    };
  }

  /** Forgets the conversation held in the KV cache. */
  reset(): Promise<void> {
    return this.run(async () => {
      const l = this.need();
      l.model.cache.truncate(0);
      l.lastAnswer = null;
    });
  }

  private release(): void {
    const l = this.loaded;
    this.loaded = null;
    if (!l) return;
    l.model.destroy();
    l.weights.destroy();
    l.sampler.destroy();
    l.penalty.destroy();
    l.gpu.destroy();
  }

  /** Frees the GPU memory. The engine cannot be used afterwards. */
  dispose(): Promise<void> {
    return this.run(async () => {
      this.release();
      this.disposed = true;
    });
  }
}
