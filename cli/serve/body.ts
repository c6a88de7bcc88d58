/**
 * Request bodies: read with a size limit (413 past it, without buffering the rest) and parsed
 * as JSON (400 with the parser's message when malformed).
 */
import type { IncomingMessage } from 'node:http';
import { formatBytes } from '../../src/errors.js';
import { HttpError } from './errors.js';

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `request body over the limit of ${formatBytes(limit)} (--max-body-mb)`, 'invalid_request_error', 'body_too_large');
}

export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `malformed JSON body: ${(e as Error).message}`, 'invalid_request_error', 'invalid_json');
  }
}
