/**
 * Main-thread side of the library: starts the worker, wraps the engine with comlink, hands
 * images over without copying (ImageBitmap / ImageData buffers are transferred, Blobs are
 * decoded in the worker), and turns streamed deltas into an async iterator. With
 * `worker: false` the same engine runs in the calling thread.
 */
import * as Comlink from 'comlink';
import { Engine, type ChatMessage, type ChatOptions, type GenerateRequest, type GenerateResult, type GenerationStats, type LoadOptions, type ModelInfo } from './engine/index.js';
import { installHandlers } from './worker/comlink-handlers.js';
import { toTransferable, transferList } from './image/decode.js';
import { AbortError, DisposedError, FormatError, WebGPUUnavailableError } from './errors.js';
import type { LoadProgress } from './weights/progress.js';

export interface LoadPixtralOptions extends Omit<LoadOptions, 'onProgress' | 'fetch'> {
  /** Progress of download, verification and upload (monotonic bytes). */
  onProgress?: (p: LoadProgress) => void;
  /** Expected weight dtype of the converted model; a mismatch is a FormatError. */
  dtype?: 'q4' | 'f16' | 'f32';
  /** Run the engine in a module Web Worker (default) or in this thread. */
  worker?: boolean;
}

/** Text deltas as they are generated; `stats` resolves when generation ends. */
export interface ChatStream extends AsyncIterable<string> {
  readonly stats: Promise<GenerationStats>;
}

type Remote = Comlink.Remote<Engine>;

export class PixtralModel {
  private disposed = false;

  constructor(
    private readonly engine: Remote | Engine,
    readonly info: ModelInfo,
    private readonly worker: Worker | null,
  ) {}

  private check(): void {
    if (this.disposed) throw new DisposedError();
  }

  /**
   * Streams the answer to the last user message. `messages` follow the OpenAI shape; image
   * parts take any `ImageInput` (canvas, ImageBitmap, ImageData, img, File/Blob).
   */
  chat(messages: ChatMessage[], opts: ChatOptions = {}): ChatStream {
    this.check();
    const queue: string[] = [];
    const waiter: { wake: (() => void) | null } = { wake: null };
    let received = '';
    let done = false;
    let failure: unknown = null;
    const push = (s: string) => {
      // Deltas travel on the callback's own channel, the result on the worker's: a delta can
      // arrive after the result, whose text already covers it, so late ones are dropped.
      if (done) return;
      received += s;
      queue.push(s);
      waiter.wake?.();
    };
    const stats = (async () => {
      try {
        const prepared = await this.prepareMessages(messages);
        const onDelta = this.worker ? Comlink.proxy(push) : push;
        const { signal, ...rest } = opts;
        const result = await this.engine.chat(Comlink.transfer(prepared.messages, prepared.transfer), rest, onDelta, signal);
        if (result.text.length > received.length) queue.push(result.text.slice(received.length));
        return result.stats;
      } catch (e) {
        failure = e;
        throw e;
      } finally {
        done = true;
        waiter.wake?.();
      }
    })();
    stats.catch(() => undefined); // surfaced through the iterator; also awaitable
    return {
      stats,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (queue.length) {
            yield queue.shift()!;
            continue;
          }
          if (done) {
            if (failure) throw failure;
            return;
          }
          await new Promise<void>((r) => (waiter.wake = r));
          waiter.wake = null;
        }
      },
    };
  }

  /** Chat, collected: the whole answer and the stats. */
  async complete(messages: ChatMessage[], opts: ChatOptions = {}): Promise<{ text: string; stats: GenerationStats }> {
    const s = this.chat(messages, opts);
    let text = '';
    for await (const d of s) text += d;
    return { text, stats: await s.stats };
  }

  /** Generation from token ids and preprocessed images (evaluation, outside checks). */
  generate(req: GenerateRequest): Promise<GenerateResult> {
    this.check();
    // The caller keeps its pixel arrays: they are copied to the worker, not transferred.
    const { signal, ...rest } = req;
    return this.engine.generate(rest, signal) as Promise<GenerateResult>;
  }

  /** Forgets the conversation held in the KV cache. */
  reset(): Promise<void> {
    this.check();
    return this.engine.reset();
  }

  /** Frees GPU memory and stops the worker. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      await this.engine.dispose();
    } finally {
      if (this.worker) {
        (this.engine as Remote)[Comlink.releaseProxy]();
        this.worker.terminate();
      }
    }
  }

  private async prepareMessages(messages: ChatMessage[]): Promise<{ messages: ChatMessage[]; transfer: Transferable[] }> {
    if (!this.worker) return { messages, transfer: [] };
    const transfer: Transferable[] = [];
    const out: ChatMessage[] = [];
    for (const m of messages) {
      if (typeof m.content === 'string') {
        out.push(m);
        continue;
      }
      const parts: Exclude<ChatMessage['content'], string> = [];
      for (const p of m.content) {
        if (p.type !== 'image') {
          parts.push(p);
          continue;
        }
        const t = await toTransferable(p.image);
        // A caller's ImageBitmap or ImageData would be detached by the transfer: send those as
        // copies, transfer only what we created here.
        if (t !== p.image) transfer.push(...transferList(t));
        parts.push({ type: 'image', image: t });
      }
      out.push({ role: m.role, content: parts });
    }
    return { messages: out, transfer };
  }
}

/**
 * Loads a converted model (see `pixtral-webgpu convert`) from `url` into a worker and returns
 * the model. Progress covers download, verification and GPU upload; `signal` aborts it.
 */
export async function loadPixtral(opts: LoadPixtralOptions): Promise<PixtralModel> {
  installHandlers();
  if (opts.signal?.aborted) throw new AbortError();
  const { worker: useWorker = true, dtype, onProgress, ...load } = opts;
  let worker: Worker | null = null;
  let engine: Remote | Engine;
  if (useWorker) {
    worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'pixtral-webgpu' });
    engine = Comlink.wrap<Engine>(worker);
  } else {
    engine = new Engine();
  }
  try {
    const progress = onProgress && (useWorker ? Comlink.proxy(onProgress) : onProgress);
    const { signal, ...rest } = load;
    // A relative model URL means relative to this page, not to the worker script's location.
    const base = typeof document !== 'undefined' ? document.baseURI : globalThis.location?.href;
    const resolve = (u: string) => (base ? new URL(u, base).href : u);
    const url = resolve(rest.url);
    const loading = engine.load({ ...rest, url, ...(rest.mmproj !== undefined ? { mmproj: resolve(rest.mmproj) } : {}) }, progress, signal);
    // A worker that cannot start (script 404, CSP, syntax error) never answers: fail instead.
    const failed = worker
      ? new Promise<never>((_, reject) =>
          worker!.addEventListener('error', (e) => reject(new WebGPUUnavailableError(`the pixtral-webgpu worker failed to start: ${e.message || 'script error'}`)), { once: true }),
        )
      : null;
    const info = await (failed ? Promise.race([loading, failed]) : loading);
    if (dtype && info.dtype !== dtype) {
      throw new FormatError(`${opts.url} holds a ${info.dtype} model, but dtype "${dtype}" was asked for`);
    }
    return new PixtralModel(engine, info, worker);
  } catch (e) {
    // Terminating the worker frees everything it held (its GPU device included); asking a
    // worker that never started to dispose would wait forever.
    if (worker) worker.terminate();
    else await (engine as Engine).dispose().catch(() => undefined);
    throw e;
  }
}
