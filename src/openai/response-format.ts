/**
 * Where structured output plugs in: `response_format` goes to the engine's `responseFormat`
 * (grammar-constrained decoding, `src/grammar/`). It is checked here first, so a schema the
 * grammar engine cannot enforce is a `RequestError` naming `response_format`, before any work.
 */
import { FormatError, RequestError } from '../errors.js';
import { checkResponseFormat, type ResponseFormat } from '../grammar/response-format.js';

/** Throws `RequestError` unless the engine can honour `format`; returns it for the engine. */
export function requestResponseFormat(format: ResponseFormat | undefined): ResponseFormat | undefined {
  try {
    checkResponseFormat(format);
  } catch (e) {
    if (e instanceof FormatError) throw new RequestError('response_format', e.message.replace(/^response_format:?\s*/, ''));
    throw e;
  }
  return format;
}
