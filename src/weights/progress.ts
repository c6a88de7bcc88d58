/**
 * Load progress: the event type handed to `onProgress` and the aggregator that produces it.
 *
 * `loadedBytes` is monotonic by construction: it is the committed bytes (files found in the
 * cache or downloaded and verified) plus, for each file still in flight, the MOST bytes any
 * attempt at it has received so far. A retried file therefore holds its mark until the new
 * attempt passes it, and the emitted value is additionally clamped to never decrease.
 * Chunk events are throttled (`intervalMs`, default 50 ms); phase changes and file completions
 * are always emitted. Pure logic with an injectable clock, unit-tested in Node.
 */

/** `compile`: the model's GPU pipelines are being built (after the weights are on the GPU). */
export type LoadPhase = 'manifest' | 'download' | 'verify' | 'cached' | 'upload' | 'compile' | 'done';

export interface LoadProgress {
  phase: LoadPhase;
  /** Bytes done (downloaded, found in the cache, or uploaded in phase 'upload'); never decreases. */
  loadedBytes: number;
  totalBytes: number;
  /** Index into `manifest.shards` the event concerns; -1 for none or for the tokenizer file. */
  shardIndex: number;
  shardCount: number;
  /** Network throughput over the last few seconds (0 when nothing is downloading). */
  bytesPerSecond: number;
  /**
   * Phase `download`: seconds left at the current rate, `(totalBytes - loadedBytes) /
   * bytesPerSecond`; absent while no rate is known yet.
   */
  etaSeconds?: number;
  /**
   * Something the caller should know that does not stop the load, e.g. that the browser gave
   * no storage estimate so the download goes on without a quota check.
   */
  warning?: string;
  /**
   * A GGUF whose server stated no whole-file SHA-256 (no 64-hex `X-Linked-Etag`/`ETag`): its URL.
   * Its chunks are still hashed when they arrive and checked when reused, but the file as a whole
   * is not checked against anything. Sent once per such file, with a `warning` saying so.
   */
  noFileHash?: string;
  /** Phase `compile`: pipelines built so far, of `pipelinesTotal`. */
  pipelinesCompiled?: number;
  pipelinesTotal?: number;
}

export type ProgressCallback = (p: LoadProgress) => void;

const contained = new WeakMap<ProgressCallback, ProgressCallback>();

/**
 * The user's callback, made harmless: an exception it throws (or a promise it returns that
 * rejects, as a Comlink proxy across the worker boundary does) does not stop the load and never
 * becomes an uncaught error. The load goes on; the callback is not called again after its first
 * failure, which is reported once with `console.error`. The same callback always gets the same
 * wrapper, so the download and the GPU upload share that state.
 */
export function containProgress(cb: ProgressCallback | undefined): ProgressCallback | undefined {
  if (!cb) return undefined;
  const known = contained.get(cb);
  if (known) return known;
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    console.error('pixtral-webgpu: onProgress threw; the load goes on without further progress events:', e);
  };
  const safe: ProgressCallback = (p) => {
    if (failed) return;
    try {
      const r = (cb as (p: LoadProgress) => unknown)(p);
      if (r && typeof (r as PromiseLike<unknown>).then === 'function') (r as PromiseLike<unknown>).then(undefined, fail);
    } catch (e) {
      fail(e);
    }
  };
  contained.set(cb, safe);
  contained.set(safe, safe);
  return safe;
}

export interface ProgressTrackerOptions {
  totalBytes: number;
  shardCount: number;
  onProgress?: ProgressCallback;
  /** Minimum time between two throttled (per-chunk) events; 0 = every chunk. Default 50. */
  intervalMs?: number;
  /** Window of the throughput estimate. Default 3000 ms. */
  rateWindowMs?: number;
  now?: () => number;
}

export class ProgressTracker {
  readonly totalBytes: number;
  readonly shardCount: number;
  private readonly onProgress?: ProgressCallback;
  private readonly intervalMs: number;
  private readonly rateWindowMs: number;
  private readonly now: () => number;
  private committed = 0;
  private readonly inflight = new Map<number, number>();
  private emittedBytes = 0;
  private lastEmit = -Infinity;
  private samples: { t: number; bytes: number }[] = [];
  private rateStart: number | null = null;

  constructor(o: ProgressTrackerOptions) {
    this.totalBytes = o.totalBytes;
    this.shardCount = o.shardCount;
    this.onProgress = containProgress(o.onProgress);
    this.intervalMs = o.intervalMs ?? 50;
    this.rateWindowMs = o.rateWindowMs ?? 3000;
    this.now = o.now ?? (() => performance.now());
  }

  /** The value last reported (or that would be reported now), clamped to [previous, total]. */
  get loadedBytes(): number {
    let v = this.committed;
    for (const b of this.inflight.values()) v += b;
    return Math.min(this.totalBytes, Math.max(this.emittedBytes, v));
  }

  /** Emits a phase event now (not throttled), with a `warning` (and other fields) when given. */
  phase(phase: LoadPhase, shardIndex = -1, warning?: string, extra?: Pick<LoadProgress, 'noFileHash'>): void {
    this.emit(phase, shardIndex, true, warning, extra);
  }

  /** `bytes` of file `key` were found in the cache. */
  cached(key: number, bytes: number): void {
    this.committed += bytes;
    this.emit('cached', key, true);
  }

  /**
   * A chunk of `delta` bytes arrived for file `key`; `attemptBytes` is what the current attempt
   * has received in all, `fileBytes` the file's expected length.
   */
  chunk(key: number, attemptBytes: number, delta: number, fileBytes: number): void {
    const t = this.now();
    this.rateStart ??= t;
    this.samples.push({ t, bytes: delta });
    const prev = this.inflight.get(key) ?? 0;
    this.inflight.set(key, Math.min(fileBytes, Math.max(prev, attemptBytes)));
    this.emit('download', key, false);
  }

  /** File `key` is complete and stored: its bytes move from in-flight to committed. */
  commit(key: number, bytes: number): void {
    this.inflight.delete(key);
    this.committed += bytes;
    this.emit('download', key, true);
  }

  /**
   * `bytes` more are done for file/shard `key` in `phase` (the GPU upload uses this): committed
   * at once, counted in the throughput, emitted throttled unless `force`.
   */
  add(phase: LoadPhase, key: number, bytes: number, force = false): void {
    const t = this.now();
    this.rateStart ??= t;
    this.samples.push({ t, bytes });
    this.committed += bytes;
    this.emit(phase, key, force);
  }

  /** Bytes per second received over the rate window. */
  bytesPerSecond(t = this.now()): number {
    const from = t - this.rateWindowMs;
    while (this.samples.length && this.samples[0]!.t < from) this.samples.shift();
    if (this.rateStart === null || !this.samples.length) return 0;
    const span = Math.max(t - Math.max(from, this.rateStart), 50); // avoid absurd rates from one early chunk
    let sum = 0;
    for (const s of this.samples) sum += s.bytes;
    return (sum * 1000) / span;
  }

  private emit(phase: LoadPhase, shardIndex: number, force: boolean, warning?: string, extra?: Pick<LoadProgress, 'noFileHash'>): void {
    const t = this.now();
    const loaded = this.loadedBytes;
    this.emittedBytes = loaded;
    if (!this.onProgress) return;
    if (!force && t - this.lastEmit < this.intervalMs) return;
    this.lastEmit = t;
    const rate = phase === 'done' || phase === 'cached' ? 0 : this.bytesPerSecond(t);
    this.onProgress({
      phase,
      loadedBytes: phase === 'done' ? this.totalBytes : loaded,
      totalBytes: this.totalBytes,
      shardIndex,
      shardCount: this.shardCount,
      bytesPerSecond: rate,
      ...(phase === 'download' && rate > 0 ? { etaSeconds: Math.max(0, this.totalBytes - loaded) / rate } : {}),
      ...(warning === undefined ? {} : { warning }),
      ...extra,
    });
    if (phase === 'done') this.emittedBytes = this.totalBytes;
  }
}
