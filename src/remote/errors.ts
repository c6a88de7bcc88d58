/**
 * The `openai` client's errors -> this library's typed errors: an HTTP error is a
 * `NetworkError` keeping the status and the server's own message (`error.message` of an
 * OpenAI-shaped body, `detail` of a FastAPI one), a connection failure a `NetworkError` without
 * status, a user abort an `AbortError`. Which failures are safe to retry is decided here too.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { AbortError, NetworkError, PixtralError } from '../errors.js';

export function toTypedError(e: unknown, baseURL: string): unknown {
  if (e instanceof PixtralError) return e;
  if (e instanceof APIUserAbortError) return new AbortError();
  if (e instanceof APIConnectionError) return new NetworkError(`${baseURL}: ${e.message}`, undefined, { cause: e });
  if (e instanceof APIError) {
    // OpenAI's shape (`error.message`: vLLM, `pixtral-webgpu serve`) or FastAPI's (`detail`:
    // Hugging Face `transformers serve`); anything else as the client words it.
    const body = e.error as { message?: unknown; detail?: unknown } | undefined;
    const message = typeof body?.message === 'string' ? body.message : typeof body?.detail === 'string' ? body.detail : e.message;
    return new NetworkError(`${baseURL} answered HTTP ${e.status ?? '?'}: ${message}`, e.status, { cause: e });
  }
  return e;
}

/**
 * Safe to send again: 429 (rate limit / full queue: refused before any work), 502/503 (no server
 * behind the proxy, or one not ready), and a connection that failed without any response (most
 * often refused; if it broke mid-request the generation may have run, but a chat completion has
 * no side effects, so the cost is compute, not a wrong result). Not a timeout or a 500: the
 * generation may still be running or have run.
 */
export function isSafeToRetry(e: unknown): boolean {
  if (e instanceof APIConnectionTimeoutError || e instanceof APIUserAbortError) return false;
  if (e instanceof APIConnectionError) return true;
  return e instanceof APIError && (e.status === 429 || e.status === 502 || e.status === 503);
}

export function retryAfterHeader(e: unknown): string | null {
  return e instanceof APIError ? (e.headers?.get('retry-after') ?? null) : null;
}
