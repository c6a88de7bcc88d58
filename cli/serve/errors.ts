/**
 * Errors as OpenAI-shaped JSON (`{ error: { message, type, param, code } }`) with the HTTP status
 * a client can act on: the request's fault is 400 (401, 404, 405, 413, 429 for their cases),
 * the server's 500, a server shutting down or without a model 503.
 */
import { AbortError, ContextLengthError, DisposedError, FormatError, ImageError, LimitError, NetworkError, RequestError } from '../../src/errors.js';
import { QueueFullError } from './queue.js';

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** The part an ImageError names at the start of its message (`messages[0].content[1]...: `). */
function imageParam(message: string): string | null {
  return /^(messages\[\d+\]\.content\[\d+\][\w.]*):/.exec(message)?.[1] ?? null;
}

export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof RequestError) return new HttpError(400, e.message, 'invalid_request_error', 'invalid_parameter', e.param);
  if (e instanceof ImageError) return new HttpError(400, e.message, 'invalid_request_error', 'invalid_image', imageParam(e.message));
  if (e instanceof ContextLengthError) return new HttpError(400, e.message, 'invalid_request_error', 'context_length_exceeded', 'messages');
  if (e instanceof LimitError || e instanceof FormatError) return new HttpError(400, e.message, 'invalid_request_error', null, null);
  // A remote image URL that could not be fetched is the request's problem, not the server's.
  if (e instanceof NetworkError) return new HttpError(400, e.message, 'invalid_request_error', 'image_fetch_failed', imageParam(e.message));
  if (e instanceof QueueFullError) return new HttpError(429, e.message, 'rate_limit_error', 'queue_full');
  // Aborted by the server (shutdown grace over); a client that disconnected reads nothing.
  if (e instanceof AbortError) return new HttpError(503, 'the request was aborted: the server is shutting down', 'server_error', 'aborted');
  if (e instanceof DisposedError) return new HttpError(503, 'the server is shutting down', 'server_error', 'shutting_down');
  return new HttpError(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'server_error');
}

export function errorBody(e: HttpError): ApiErrorBody {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}
