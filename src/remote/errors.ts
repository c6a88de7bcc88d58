/**
 * The `openai` client's errors -> this library's typed errors: an HTTP error is a
 * `NetworkError` keeping the status and the server's own message (`error.message` of an
 * OpenAI-shaped body), a connection failure a `NetworkError` without status, a user abort an
 * `AbortError`. Which failures are safe to retry is decided here too.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { AbortError, NetworkError, PixtralError } from '../errors.js';

export function toTypedError(e: unknown, baseURL: string): unknown {
  if (e instanceof PixtralError) return e;
  if (e instanceof APIUserAbortError) return new AbortError();
  if (e instanceof APIConnectionError) return new NetworkError(`${baseURL}: ${e.message}`, undefined, { cause: e });
  if (e instanceof APIError) {
    const body = e.error as { message?: unknown } | undefined;
    const message = typeof body?.message === 'string' ? body.message : e.message;
    return new NetworkError(`${baseURL} answered HTTP ${e.status ?? '?'}: ${message}`, e.status, { cause: e });
  }
  return e;
}

/**
 * Safe to send again: the server did not run the request. A connection that could not be made,
 * 429 (rate limit / full queue: refused before work) and 502/503 (no server behind the proxy, or
 * one not ready). Not a timeout or a 500: the generation may have run.
 */
export function isSafeToRetry(e: unknown): boolean {
  if (e instanceof APIConnectionTimeoutError || e instanceof APIUserAbortError) return false;
  if (e instanceof APIConnectionError) return true;
  return e instanceof APIError && (e.status === 429 || e.status === 502 || e.status === 503);
}

export function retryAfterHeader(e: unknown): string | null {
  return e instanceof APIError ? (e.headers?.get('retry-after') ?? null) : null;
}
