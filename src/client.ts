/**
 * Main-thread side of the library: starts the worker, wraps the engine with comlink, hands
 * images over without copying (ImageBitmap / ImageData buffers are transferred, Blobs are
 * decoded in the worker), and turns streamed deltas into an async iterator. With
 * `worker: false` the same engine runs in the calling thread, imported on demand, so an app that
 * uses the worker ships the engine and its shaders once (in the worker's chunk).
 *
 * Requests are validated here before anything crosses to the worker, and a worker that stops
 * (crash, `close()`, terminated) is noticed through a Web Lock it holds for its whole life:
 * every pending and later call then fails with a `DisposedError` instead of hanging.
 */
import * as Comlink from 'comlink';
import type { Engine, ChatMessage, ChatOptions, GenerateRequest, GenerateResult, GenerationStats, LoadRequest, ModelInfo } from './engine/index.js';
import { installHandlers } from './worker/comlink-handlers.js';
import { validateGenerationOptions, validateLoadOptions, validateMessages } from './engine/validate.js';
import { toTransferable, transferList } from './image/decode.js';
import { AbortError, DisposedError, FormatError, WebGPUUnavailableError, throwIfAborted } from './errors.js';
import type { LoadProgress } from './weights/progress.js';
import { watchWorkerLife, workerLifeName } from './worker/life.js';

export interface LoadPixtralOptions extends Omit<LoadRequest, 'onProgress' | 'fetch' | 'openModel' | 'openGguf' | 'ggufCache'> {
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
  /** Set when the worker stopped on its own: every later call fails with it. */
  private death: DisposedError | null = null;
  private readonly died: Promise<never>;

  constructor(
    private readonly engine: Remote | Engine,
    readonly info: ModelInfo,
    private readonly worker: Worker | null,
    workerDied?: Promise<DisposedError>,
  ) {
    this.died = new Promise<never>((_, reject) => {
      void workerDied?.then((e) => {
        if (this.disposed) return;
        this.death = e;
        reject(e);
      });
    });
    this.died.catch(() => undefined);
  }

  private check(): void {
    if (this.death) throw this.death;
    if (this.disposed) throw new DisposedError();
  }

  /** A call to the engine that fails, instead of hanging, if the worker stops meanwhile. */
  private call<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.died]);
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
    // Leaving the iteration early (break, return(), a throw in the loop body) aborts the turn.
    const stopper = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stopper.signal]) : stopper.signal;
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
        validateMessages(messages);
        const { signal: _, ...rest } = validateGenerationOptions(opts);
        throwIfAborted(signal);
        const prepared = await this.prepareMessages(messages);
        const onDelta = this.worker ? Comlink.proxy(push) : push;
        const result = await this.call(this.engine.chat(Comlink.transfer(prepared.messages, prepared.transfer), rest, onDelta, signal));
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
        let finished = false;
        try {
          for (;;) {
            if (queue.length) {
              yield queue.shift()!;
              continue;
            }
            if (done) {
              finished = true;
              if (failure) throw failure;
              return;
            }
            await new Promise<void>((r) => (waiter.wake = r));
            waiter.wake = null;
          }
        } finally {
          if (!finished) {
            stopper.abort(new AbortError('aborted: the caller stopped reading the stream'));
            // The turn ends within one decode step; the queue is free once it has.
            await stats.catch(() => undefined);
          }
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
  async generate(req: GenerateRequest): Promise<GenerateResult> {
    this.check();
    // The caller keeps its pixel arrays: they are copied to the worker, not transferred.
    const { signal, ...rest } = validateGenerationOptions(req);
    return this.call(this.engine.generate(rest, signal) as Promise<GenerateResult>);
  }

  /** Forgets the conversation held in the KV cache. */
  async reset(): Promise<void> {
    this.check();
    return this.call(this.engine.reset());
  }

  /** Frees GPU memory and stops the worker. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      if (!this.death) await this.engine.dispose();
    } finally {
      if (this.worker) {
        (this.engine as Remote)[Comlink.releaseProxy]();
        this.worker.terminate();
      }
    }
  }

  /** Images -> what the engine receives (the Node entry overrides this to decode files). */
  protected async prepareMessages(messages: ChatMessage[]): Promise<{ messages: ChatMessage[]; transfer: Transferable[] }> {
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
 * Loads a converted model (see `pixtral-webgpu convert`) from `url`, or a llama.cpp GGUF pair
 * (`url` + `mmproj`: URLs, or `File`/`Blob` objects read in place), into a worker and returns
 * the model. Progress covers download, verification and GPU upload; `signal` aborts it.
 */
export async function loadPixtral(opts: LoadPixtralOptions): Promise<PixtralModel> {
  validateLoadOptions(opts);
  installHandlers();
  throwIfAborted(opts.signal);
  const { worker: useWorker = true, dtype, onProgress, ...load } = opts;
  let worker: Worker | null = null;
  let engine: Remote | Engine;
  let workerDied: Promise<DisposedError> | undefined;
  if (useWorker) {
    const name = workerLifeName();
    worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name });
    workerDied = watchWorkerLife(worker, name);
    engine = Comlink.wrap<Engine>(worker);
  } else {
    // Loaded on demand: the worker chunk already holds the engine, the main bundle does not.
    const { Engine } = await import('./engine/engine.js');
    engine = new Engine();
  }
  try {
    const progress = onProgress && (useWorker ? Comlink.proxy(onProgress) : onProgress);
    const { signal, ...rest } = load;
    // A relative model URL means relative to this page, not to the worker script's location.
    const base = typeof document !== 'undefined' ? document.baseURI : globalThis.location?.href;
    // File/Blob inputs (a GGUF pair picked from disk) cross to the worker as they are: a File's
    // structured clone reads the same file in place.
    const resolve = <T extends string | Blob>(u: T): T => (typeof u === 'string' && base ? (new URL(u, base).href as T) : u);
    const url = resolve(rest.url);
    const loading = engine.load({ ...rest, url, ...(rest.mmproj !== undefined ? { mmproj: resolve(rest.mmproj) } : {}) }, progress, signal);
    // A worker that cannot start (script 404, CSP, syntax error) never answers: fail instead.
    const failed = worker
      ? new Promise<never>((_, reject) => {
          worker!.addEventListener('error', (e) => reject(new WebGPUUnavailableError(`the pixtral-webgpu worker failed to start: ${e.message || 'script error'}`)), { once: true });
          void workerDied!.then(reject);
        })
      : null;
    const info = await (failed ? Promise.race([loading, failed]) : loading);
    if (dtype && info.dtype !== dtype) {
      throw new FormatError(`${info.name} holds a ${info.dtype} model, but dtype "${dtype}" was asked for`);
    }
    return new PixtralModel(engine, info, worker, workerDied);
  } catch (e) {
    // Terminating the worker frees everything it held (its GPU device included); asking a
    // worker that never started to dispose would wait forever.
    if (worker) worker.terminate();
    else await (engine as Engine).dispose().catch(() => undefined);
    throw e;
  }
}
