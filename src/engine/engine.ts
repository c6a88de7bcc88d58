/**
 * The engine: loads a converted model onto the GPU and runs chat and generation. It has the
 * same interface in a Web Worker (`worker.ts` only exposes it through comlink) and in-thread
 * (tests call it directly). One model, one queue: calls are serialised.
 *
 * Data flow of one chat turn: messages -> images decoded and preprocessed, prompt ids with
 * image-token grids (`turn.ts`) -> prefill over the KV cache, reusing the cached prefix, then
 * per step GPU sampling and one token id read back (`decode-loop.ts`) -> streaming UTF-8-safe
 * detokenisation -> stop strings -> text.
 */
import { AbortError, DisposedError, LimitError, abortError, throwIfAborted } from '../errors.js';
import { resolveSampling } from '../model/sampler.js';
import { StopStringFilter } from '../model/stop.js';
import type { ProgressCallback } from '../weights/progress.js';
import { preprocessImage, preprocessOptionsFor } from '../image/preprocess.js';
import type { ImageInput } from '../image/decode.js';
import { loadModel, releaseModel, type LoadedModel } from './load.js';
import { prepareChat, prepareGenerate, type PreparedTurn } from './turn.js';
import { decodeLoop, type DecodeRequest } from './decode-loop.js';
import { ImageCache } from './image-cache.js';
import { validateGenerationOptions, validateLoadOptions } from './validate.js';
import { grammarSpec } from '../grammar/response-format.js';
import type { ChatMessage, ChatOptions, ChatResult, GenerateRequest, GenerateResult, GenerationStats, LoadRequest, ModelInfo } from './types.js';
import { resolveFileInputs } from '../gguf/file-inputs.js';

export class Engine {
  private loaded: LoadedModel | null = null;
  private disposed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Aborted by `dispose()`: the running call stops within one decode step. */
  private readonly lifetime = new AbortController();
  private readonly images = new ImageCache();

  /** Serialises every call on the one model. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private need(): LoadedModel {
    if (this.disposed) throw new DisposedError();
    if (!this.loaded) throw new LimitError('no model loaded: call load() first');
    if (this.loaded.gpu.isLost) this.loaded.gpu.check(); // throws the DeviceLostError
    return this.loaded;
  }

  /** The caller's signal joined with the engine's lifetime (aborted by `dispose`). */
  private signalFor(signal?: AbortSignal): AbortSignal {
    return signal ? AbortSignal.any([signal, this.lifetime.signal]) : this.lifetime.signal;
  }

  /**
   * Loads a converted model. `onProgress` and `signal` may also be passed as separate
   * arguments (comlink forwards callbacks and signals only as top-level arguments).
   */
  load(options: LoadRequest, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<ModelInfo> {
    return this.run(async () => {
      if (this.disposed) throw new DisposedError();
      validateLoadOptions(options); // before anything is fetched, allocated or released
      const opts = { ...resolveFileInputs(options), onProgress: onProgress ?? options.onProgress, signal: this.signalFor(signal ?? options.signal) };
      await this.release();
      this.loaded = await loadModel(opts);
      return this.loaded.info;
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
   * stats. A follow-up call whose messages extend the previous conversation reuses the KV cache
   * (the longest prefix of equal positions); the prompt ids depend only on the messages' text.
   */
  chat(
    messages: ChatMessage[],
    options: ChatOptions = {},
    onDelta: (text: string) => void = () => {},
    signal?: AbortSignal,
  ): Promise<ChatResult> {
    return this.run(async () => {
      const l = this.need();
      const opts = validateGenerationOptions(options);
      const sig = this.signalFor(signal ?? options?.signal);
      throwIfAborted(sig);
      const sampling = resolveSampling(opts);
      const format = grammarSpec(opts.responseFormat); // an unsupported schema fails before any work
      // Images and the prompt first (CPU work only): all before any GPU work. Long texts are
      // tokenized in chunks that yield, so an abort or dispose stops them.
      const encode = (text: string) => l.tokenizer.encodeAsync(text, { signal: sig });
      const turn = await prepareChat(messages, l.model.config, l.tokenizer, encode, this.images, { longestEdge: opts.longestEdge, signal: sig });
      const decoder = l.tokenizer.createStreamDecoder();
      const stop = new StopStringFilter(opts.stop);
      let answer = '';
      const constraint = format ? await l.grammars.start(format) : null;
      const stats = await this.decode(l, turn, {
        sampling,
        constraint,
        maxTokens: opts.maxTokens ?? 256,
        signal: sig,
        returnLogits: false,
        emit: (tok) => {
          const text = stop.push(decoder.push(tok));
          answer += text;
          if (text) onDelta(text);
          return stop.done;
        },
      }).finally(() => constraint?.dispose());
      const tail = stop.push(decoder.flush()) + stop.flush();
      if (tail) {
        answer += tail;
        onDelta(tail);
      }
      return { text: answer, stats: stats.stats };
    });
  }

  /** Generation from token ids and preprocessed images, for evaluation and outside checks. */
  generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    return this.run(async () => {
      const l = this.need();
      const req = validateGenerationOptions(request);
      const sig = this.signalFor(signal ?? request.signal);
      const turn = prepareGenerate(req, l.model.config, l.model.tokenPixels);
      const tokenIds: number[] = [];
      const out = await this.decode(l, turn, {
        sampling: resolveSampling(req),
        maxTokens: req.maxNewTokens ?? req.maxTokens ?? 16,
        signal: sig,
        returnLogits: !!req.returnLogits,
        emit: (tok) => {
          tokenIds.push(tok);
          return false;
        },
      });
      return { tokenIds, logits: out.logits, stats: out.stats };
    });
  }

  /**
   * Runs the token loop; an abort by `dispose` is a `DisposedError` even after some tokens, a
   * caller's abort before any token an `AbortError` carrying the signal's reason, and a failure
   * on a lost device the `DeviceLostError`.
   */
  private async decode(l: LoadedModel, turn: PreparedTurn, r: Omit<DecodeRequest, 'turn'>): Promise<{ stats: GenerationStats; logits?: Float32Array }> {
    try {
      const out = await decodeLoop(l, { ...r, turn });
      throwIfAborted(this.lifetime.signal);
      return { logits: out.logits, stats: { ...out.stats, imagesPreprocessed: turn.imagesPreprocessed ?? 0 } };
    } catch (e) {
      throwIfAborted(this.lifetime.signal);
      if (l.gpu.isLost) l.gpu.check();
      if (e instanceof AbortError && r.signal?.aborted) throw abortError(r.signal);
      throw e;
    }
  }

  /** Forgets the conversation held in the KV cache. */
  reset(): Promise<void> {
    return this.run(async () => {
      this.need().model.cache.truncate(0);
    });
  }

  /** Frees the GPU at once; settles when the model's cache lock is free too (a delete may follow). */
  private async release(): Promise<void> {
    const l = this.loaded;
    this.loaded = null;
    this.images.clear();
    if (l) await releaseModel(l);
  }

  /**
   * Frees the GPU memory. A generation in progress stops within one decode step and rejects with
   * `DisposedError`, as does every call queued behind it; the engine cannot be used afterwards.
   */
  dispose(): Promise<void> {
    if (!this.disposed) {
      this.disposed = true;
      this.lifetime.abort(new DisposedError());
    }
    return this.run(async () => this.release());
  }
}
