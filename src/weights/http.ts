/**
 * One file over HTTP for the model downloader: a GET with retries and backoff (`retry.ts`), its
 * body streamed into a buffer with progress, and a stall guard. Failures are sorted into what is
 * worth another attempt (`Retryable`: network errors, 5xx/408/429, a body cut mid-stream, a
 * server that stops sending) and what is final (404 and other 4xx as NetworkError, an abort as
 * AbortError). Out of retries, a Retryable becomes NetworkError (IntegrityError when the bytes
 * arrived but failed verification).
 *
 * Stall guard: a server that keeps the connection open and stops sending would hang a load
 * forever. Each attempt aborts its own request when no byte has arrived for `stallTimeoutMs`
 * (waiting for the headers included) and counts as a failed attempt, so it is retried.
 */
import { AbortError, IntegrityError, NetworkError, type PixtralError, throwIfAborted } from '../errors.js';
import { backoffDelay, isRetryableStatus, parseRetryAfter, sleep as realSleep, type RetryPolicy } from './retry.js';

/** Default stall timeout: no byte for 30 s. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;

/** Largest body read without an expected length (the manifest): far above any real manifest. */
const MAX_UNSIZED_BYTES = 64 << 20;

export interface HttpCtx {
  fetch: typeof fetch;
  /** The load's signal (the caller's abort and the pool's stop). */
  signal: AbortSignal;
  policy: RetryPolicy;
  stallTimeoutMs: number;
  /** The wait between attempts; tests inject a clock that records instead of sleeping. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Is this a failure of the transport (worth a retry), as opposed to a bug or an abort? */
export class Retryable extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs: number | null = null,
    /** The bytes arrived but failed verification: out of retries, this is an IntegrityError. */
    readonly integrity = false,
  ) {
    super(message);
  }
}

export function abortErrorFrom(signal: AbortSignal | undefined): PixtralError {
  try {
    throwIfAborted(signal);
  } catch (e) {
    return e as PixtralError;
  }
  return new AbortError();
}

/** One attempt's stall guard: aborts its signal when no byte arrived for `ms`. */
class StallGuard {
  private readonly ctl = new AbortController();
  readonly signal: AbortSignal;
  private timer: ReturnType<typeof setTimeout> | undefined;
  fired = false;

  constructor(readonly ms: number, parent: AbortSignal) {
    this.signal = AbortSignal.any([parent, this.ctl.signal]);
    this.kick();
  }

  /** Bytes arrived (or the attempt starts): the clock restarts. */
  kick(): void {
    clearTimeout(this.timer);
    if (!Number.isFinite(this.ms)) return;
    this.timer = setTimeout(() => {
      this.fired = true;
      this.ctl.abort();
    }, this.ms);
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** The error for an attempt that failed with `e`: abort, stall, or a transport failure. */
function attemptError(ctx: HttpCtx, guard: StallGuard, url: string, received: number, e: unknown): unknown {
  if (ctx.signal.aborted) return abortErrorFrom(ctx.signal);
  if (guard.fired) return new Retryable(`${url}: no bytes for ${guard.ms / 1000} s, stalled after ${received} bytes`);
  if (e instanceof Retryable || e instanceof NetworkError) return e;
  return new Retryable(`${url}: ${received ? `body interrupted after ${received} bytes: ` : ''}${(e as Error)?.message ?? e}`);
}

/** Bytes `start..end` (inclusive) of a file: a `Range` request that must be answered with 206. */
export interface ByteRange {
  start: number;
  end: number;
}

/** One GET under `guard`; non-OK statuses become Retryable or NetworkError. */
async function request(ctx: HttpCtx, guard: StallGuard, url: string, range?: ByteRange): Promise<Response> {
  // no-store: the bytes go to IndexedDB; a second copy in the HTTP cache would only cost quota.
  const headers = range ? { Range: `bytes=${range.start}-${range.end}` } : undefined;
  const res = await ctx.fetch(url, { signal: guard.signal, cache: 'no-store', ...(headers ? { headers } : {}) });
  if (range && res.ok) {
    const got = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('Content-Range') ?? '');
    if (res.status === 206 && got && Number(got[1]) === range.start) return res;
    res.body?.cancel().catch(() => {});
    // A server that ignores Range would send the whole file for every chunk: final, not retried.
    throw new NetworkError(`${url}: asked for bytes ${range.start}-${range.end}, got HTTP ${res.status} ${res.headers.get('Content-Range') ?? '(no Content-Range)'}; the server must serve Range requests`, res.status);
  }
  if (res.ok) return res;
  res.body?.cancel().catch(() => {});
  const msg = `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (isRetryableStatus(res.status)) throw new Retryable(msg, res.status, parseRetryAfter(res.headers.get('retry-after')));
  throw new NetworkError(msg, res.status);
}

/**
 * One attempt at `url`: its body as bytes, each chunk reported. With `expected`, a body longer
 * or shorter than that gives null (an integrity failure, not a transport one); without, the body
 * may be at most 64 MiB. With `opts.range`, only those bytes are asked for (206 required);
 * `opts.onResponse` sees the response's headers (a GGUF's size and ETag) before the body.
 */
export async function fetchOnce(
  ctx: HttpCtx, url: string, expected: number | null, onChunk?: (attemptBytes: number, delta: number) => void,
  opts: { range?: ByteRange; onResponse?: (res: Response) => void } = {},
): Promise<Uint8Array | null> {
  throwIfAborted(ctx.signal);
  const guard = new StallGuard(ctx.stallTimeoutMs, ctx.signal);
  let n = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  // A custom fetch may hand back a stream that ignores the signal: cancel it ourselves.
  const onAbort = () => void reader?.cancel().catch(() => {});
  guard.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await request(ctx, guard, url, opts.range);
    opts.onResponse?.(res);
    guard.kick();
    if (!res.body) {
      const b = new Uint8Array(await res.arrayBuffer());
      onChunk?.(b.byteLength, b.byteLength);
      return expected === null || b.byteLength === expected ? b : null;
    }
    let out = new Uint8Array(expected ?? 64 * 1024);
    reader = res.body.getReader();
    for (;;) {
      const r = await reader.read();
      if (guard.signal.aborted) throw new Error('aborted');
      if (r.done) break;
      guard.kick();
      const chunk = r.value;
      if (expected !== null && n + chunk.byteLength > expected) {
        await reader.cancel().catch(() => {});
        return null;
      }
      if (n + chunk.byteLength > out.byteLength) {
        if (n + chunk.byteLength > MAX_UNSIZED_BYTES) throw new NetworkError(`${url}: larger than ${MAX_UNSIZED_BYTES} bytes`);
        const grown = new Uint8Array(Math.min(MAX_UNSIZED_BYTES, Math.max(2 * out.byteLength, n + chunk.byteLength)));
        grown.set(out.subarray(0, n));
        out = grown;
      }
      out.set(chunk, n);
      n += chunk.byteLength;
      onChunk?.(n, chunk.byteLength);
    }
    if (expected === null) return out.slice(0, n);
    return n === expected ? out : null;
  } catch (e) {
    throw attemptError(ctx, guard, url, n, e);
  } finally {
    guard.stop();
    guard.signal.removeEventListener('abort', onAbort);
    reader?.releaseLock();
  }
}

/** Runs `fn` with retries and backoff; Retryable errors are retried, others thrown. */
export async function withRetries<T>(ctx: HttpCtx, what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
  const wait = ctx.sleep ?? realSleep;
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(ctx.signal);
    try {
      return await fn(attempt);
    } catch (e) {
      if (ctx.signal.aborted) throw abortErrorFrom(ctx.signal);
      if (!(e instanceof Retryable)) throw e;
      if (attempt >= ctx.policy.retries) {
        if (e.integrity) throw new IntegrityError(`${what}: ${e.message}`);
        throw new NetworkError(`${what}: failed after ${attempt + 1} attempts: ${e.message}`, e.status, { cause: e });
      }
      await wait(backoffDelay(attempt, ctx.policy, ctx.random ?? Math.random, e.retryAfterMs), ctx.signal);
    }
  }
}

/**
 * URL of file `name` of the model at `base` (normalised, ends with '/'), with the query string
 * the caller gave (a signed URL's signature goes to every file, not only to the manifest).
 */
export function fileUrl(base: string, name: string, query: string): string {
  const u = new URL(name, base);
  u.search = query;
  return u.href;
}
