/**
 * The remote backend's error policy with the `openai` SDK's own error classes: what becomes a
 * `NetworkError` (status and the server's message kept) or an `AbortError`, and which failures
 * are retried (only those where the server did not run the request).
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { describe, expect, it } from 'vitest';
import { AbortError, NetworkError } from '../../src/errors.js';
import { isSafeToRetry, retryAfterHeader, toTypedError } from '../../src/remote/errors.js';

const http = (status: number, message = 'boom', headers: Record<string, string> = {}) =>
  APIError.generate(status, { error: { message, type: 'invalid_request_error' } }, undefined, new Headers(headers));

describe('remote errors', () => {
  it('keeps the status and the server\'s own message', () => {
    const e = toTypedError(http(400, 'n: n = 2 (several choices) is not supported'), 'http://h/v1');
    expect(e).toBeInstanceOf(NetworkError);
    expect((e as NetworkError).status).toBe(400);
    expect((e as NetworkError).message).toBe('http://h/v1 answered HTTP 400: n: n = 2 (several choices) is not supported');
    // FastAPI's body (Hugging Face transformers serve), as the client normalises it: { error: body }.
    const fastapi = toTypedError(APIError.generate(400, { error: { detail: "Server is pinned to 'a'; requested 'b'." } }, undefined, new Headers()), 'http://h/v1');
    expect((fastapi as NetworkError).message).toBe("http://h/v1 answered HTTP 400: Server is pinned to 'a'; requested 'b'.");
    expect(toTypedError(new APIUserAbortError(), 'x')).toBeInstanceOf(AbortError);
    const conn = toTypedError(new APIConnectionError({ message: 'Connection error.' }), 'http://h/v1');
    expect(conn).toBeInstanceOf(NetworkError);
    expect((conn as NetworkError).status).toBeUndefined();
  });

  it('retries only what the server did not run', () => {
    expect(isSafeToRetry(new APIConnectionError({ message: 'refused' }))).toBe(true);
    for (const s of [429, 502, 503]) expect(isSafeToRetry(http(s)), String(s)).toBe(true);
    for (const s of [400, 401, 404, 413, 500, 504]) expect(isSafeToRetry(http(s)), String(s)).toBe(false);
    expect(isSafeToRetry(new APIConnectionTimeoutError())).toBe(false);
    expect(isSafeToRetry(new APIUserAbortError())).toBe(false);
    expect(retryAfterHeader(http(429, 'busy', { 'retry-after': '2' }))).toBe('2');
  });
});
