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
import { DisposedError, LimitError, throwIfAborted } from '../errors.js';
import { resolveSampling } from '../model/sampler.js';
import { StopStringFilter } from '../model/stop.js';
import type { ProgressCallback } from '../weights/progress.js';
import { preprocessImage, preprocessOptionsFor } from '../image/preprocess.js';
import type { ImageInput } from '../image/decode.js';
import { loadModel, releaseModel, type LoadedModel } from './load.js';
import { prepareChat, prepareGenerate } from './turn.js';
import { decodeLoop } from './decode-loop.js';
import { grammarSpec } from '../grammar/response-format.js';
import type { ChatMessage, ChatOptions, ChatResult, GenerateRequest, GenerateResult, LoadOptions, ModelInfo } from './types.js';

interface Loaded extends LoadedModel {
  /** Token ids of the last answer, to render it exactly as generated in the next turn. */
  lastAnswer: { text: string; ids: number[] } | null;
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
      await this.release();
      const l = await loadModel(opts);
      this.loaded = { ...l, lastAnswer: null };
      return l.info;
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
      const format = grammarSpec(opts.responseFormat);
      const last = l.lastAnswer;
      const encode = (text: string) => (last && text === last.text ? last.ids : l.tokenizer.encodeAsync(text, { signal: opts.signal }));
      // Images and the prompt first (CPU work only): all before any GPU work.
      const turn = await prepareChat(messages, l.model.config, l.tokenizer, encode, opts);
      const ids: number[] = [];
      const decoder = l.tokenizer.createStreamDecoder();
      const stop = new StopStringFilter(opts.stop ?? []);
      let answer = '';
      const constraint = format ? await l.grammars.start(format) : null;
      const out = await decodeLoop(l, {
        turn,
        sampling,
        constraint,
        maxTokens: opts.maxTokens ?? 256,
        signal: opts.signal,
        returnLogits: false,
        emit: (tok) => {
          ids.push(tok);
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
      l.lastAnswer = { text: answer, ids };
      return { text: answer, stats: out.stats };
    });
  }

  /** Generation from token ids and preprocessed images, for evaluation and outside checks. */
  generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    const req = { ...request, signal: signal ?? request.signal };
    return this.run(async () => {
      const l = this.need();
      const turn = prepareGenerate(req, l.model.config, l.model.tokenPixels);
      const tokenIds: number[] = [];
      const out = await decodeLoop(l, {
        turn,
        sampling: resolveSampling(req),
        maxTokens: req.maxNewTokens ?? req.maxTokens ?? 16,
        signal: req.signal,
        returnLogits: !!req.returnLogits,
        emit: (tok) => {
          tokenIds.push(tok);
          return false;
        },
      });
      l.lastAnswer = null;
      return { tokenIds, logits: out.logits, stats: out.stats };
    });
  }

  /** Forgets the conversation held in the KV cache. */
  reset(): Promise<void> {
    return this.run(async () => {
      const l = this.need();
      l.model.cache.truncate(0);
      l.lastAnswer = null;
    });
  }

  /** Frees the GPU at once; settles when the model's cache lock is free too (a delete may follow). */
  private async release(): Promise<void> {
    const l = this.loaded;
    this.loaded = null;
    if (l) await releaseModel(l);
  }

  /** Frees the GPU memory. The engine cannot be used afterwards. */
  dispose(): Promise<void> {
    return this.run(async () => {
      await this.release();
      this.disposed = true;
    });
  }
}
