/**
 * Retry policy of the model downloader: which failures are retried, the exponential backoff
 * schedule (with jitter, honouring `Retry-After`), and an abortable sleep. Pure logic, unit-tested
 * in Node.
 */
import { AbortError, throwIfAborted } from '../errors.js';

export interface RetryPolicy {
  /** Retries after the first attempt (so at most `retries + 1` requests per file). Default 4. */
  retries: number;
  /** Delay before the first retry; doubles each retry. Default 500 ms. */
  baseDelayMs: number;
  /** Upper bound of one delay (also caps `Retry-After`). Default 15 s. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 500, maxDelayMs: 15_000 };

/**
 * Delay before retry number `attempt` (0 = first retry): `base * 2^attempt`, capped at
 * `maxDelayMs`, scaled by a jitter factor in [0.5, 1) so that many clients do not retry in step.
 * A server's `Retry-After` (ms) raises it, still capped.
 */
export function backoffDelay(attempt: number, p: RetryPolicy, random: () => number = Math.random, retryAfterMs?: number | null): number {
  const exp = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.max(0, attempt));
  const jittered = exp * (0.5 + 0.5 * random());
  return Math.min(p.maxDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** HTTP statuses worth retrying: timeouts, rate limits and server errors. 404 and other 4xx are final. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status <= 599);
}

/** Parses a `Retry-After` header (seconds or an HTTP date) into milliseconds; null if absent/invalid. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  const s = header.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

/** Resolves after `ms`, or rejects with AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    throwIfAborted(signal);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      try {
        throwIfAborted(signal);
      } catch (e) {
        reject(e);
        return;
      }
      reject(new AbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
