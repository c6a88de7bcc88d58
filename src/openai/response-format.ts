/**
 * Where structured output plugs in: `response_format` -> what constrains decoding. Today only
 * `text` (no constraint) is served; `json_object` and `json_schema` are refused with a
 * `RequestError` naming the parameter, before any work. Grammar-constrained decoding
 * (`src/grammar/`, xgrammar and the GPU token mask) replaces this refusal with a compiled
 * grammar handed to the engine.
 */
import { RequestError } from '../errors.js';
import type { ResponseFormat } from './request.js';

/** Throws unless the engine can honour `format`. */
export function checkResponseFormat(format: ResponseFormat | undefined): void {
  if (!format || format.type === 'text') return;
  throw new RequestError('response_format', `type "${format.type}" (structured output) is not supported yet; only "text" is`);
}
