/**
 * OpenAI `chat.completions.create` parameters -> the engine's chat request, checked at run time
 * (JavaScript callers and HTTP bodies get the same checks). Unknown fields are ignored, as
 * OpenAI-compatible servers do; a known field of the wrong type or out of range, and a feature
 * this engine does not implement (`n` > 1, tools, logprobs, audio, ...), is a `RequestError`
 * naming the parameter, never silently dropped.
 *
 * Mapping: `max_completion_tokens` (else `max_tokens`) -> maxTokens; `temperature`, `top_p`,
 * `seed`, `stop` as is; extensions `top_k`, `repetition_penalty` (Hugging Face's multiplicative
 * penalty, which the engine implements) and `longest_edge`. OpenAI's additive
 * `presence_penalty` / `frequency_penalty` have no exact equivalent in the engine: 0 is
 * accepted, anything else refused with a pointer to `repetition_penalty`.
 */
import { RequestError } from '../errors.js';
import type { ChatOptions } from '../engine/types.js';
import type { ImageInput } from '../image/decode.js';
import type { ResponseFormat } from '../grammar/response-format.js';

/** A content part after validation; image URLs are resolved later (`images.ts`). */
export type RequestPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; url: string; param: string }
  | { type: 'image'; image: ImageInput; param: string };

export interface RequestMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | RequestPart[];
}

export interface ChatRequest {
  messages: RequestMessage[];
  options: Omit<ChatOptions, 'signal' | 'responseFormat'>;
  stream: boolean;
  /** The `model` field, when given (informational: an engine serves one model). */
  model?: string;
  responseFormat?: ResponseFormat;
}

/** The engine's top-k bound (README: `topK` <= 64), checked here to name the parameter. */
export const TOP_K_MAX = 64;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function fail(param: string, message: string): never {
  throw new RequestError(param, message);
}

/** A field that is absent or null (OpenAI's "use the default") reads as undefined. */
function opt(body: Obj, key: string): unknown {
  const v = body[key];
  return v === null ? undefined : v;
}

function num(body: Obj, key: string, check: { min?: number; max?: number; gt?: number; integer?: boolean } = {}): number | undefined {
  const v = opt(body, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `must be a number (got ${typeName(v)})`);
  if (check.integer && !Number.isInteger(v)) fail(key, `must be an integer (got ${v})`);
  if (check.min !== undefined && v < check.min) fail(key, `must be >= ${check.min} (got ${v})`);
  if (check.gt !== undefined && v <= check.gt) fail(key, `must be > ${check.gt} (got ${v})`);
  if (check.max !== undefined && v > check.max) fail(key, `must be <= ${check.max} (got ${v})`);
  return v;
}

function bool(body: Obj, key: string): boolean | undefined {
  const v = opt(body, key);
  if (v !== undefined && typeof v !== 'boolean') fail(key, `must be a boolean (got ${typeName(v)})`);
  return v;
}

function unsupported(param: string, what: string): never {
  fail(param, `${what} is not supported by pixtral-webgpu`);
}

/** Refuses the OpenAI features the engine does not implement, when they are actually asked for. */
function refuseUnsupported(body: Obj): void {
  const n = num(body, 'n', { integer: true, min: 1 });
  if (n !== undefined && n !== 1) unsupported('n', `n = ${n} (several choices)`);
  for (const key of ['tools', 'functions']) {
    const v = opt(body, key);
    if (v === undefined) continue;
    if (!Array.isArray(v)) fail(key, `must be an array (got ${typeName(v)})`);
    if (v.length) unsupported(key, 'tool calling');
  }
  for (const key of ['tool_choice', 'function_call']) {
    const v = opt(body, key);
    if (v !== undefined && v !== 'none') unsupported(key, 'tool calling');
  }
  if (bool(body, 'logprobs')) unsupported('logprobs', 'logprobs');
  const top = num(body, 'top_logprobs', { integer: true, min: 0, max: 20 });
  if (top) unsupported('top_logprobs', 'logprobs');
  const bias = opt(body, 'logit_bias');
  if (bias !== undefined) {
    if (!isObj(bias)) fail('logit_bias', `must be an object (got ${typeName(bias)})`);
    if (Object.keys(bias).length) unsupported('logit_bias', 'logit_bias');
  }
  if (opt(body, 'audio') !== undefined) unsupported('audio', 'audio output');
  if (opt(body, 'prediction') !== undefined) unsupported('prediction', 'predicted outputs');
  const modalities = opt(body, 'modalities');
  if (modalities !== undefined) {
    if (!Array.isArray(modalities)) fail('modalities', `must be an array (got ${typeName(modalities)})`);
    if (modalities.some((m) => m !== 'text')) unsupported('modalities', 'output other than text');
  }
  for (const key of ['presence_penalty', 'frequency_penalty']) {
    const v = num(body, key, { min: -2, max: 2 });
    if (v) {
      fail(key, `OpenAI's additive penalty has no exact equivalent here; use repetition_penalty (Hugging Face's multiplicative penalty, e.g. 1.1) instead`);
    }
  }
}

function parseStop(body: Obj): string[] | undefined {
  const v = opt(body, 'stop');
  if (v === undefined) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) fail('stop', `must be a string or an array of strings (got ${typeName(v)})`);
  if (list.some((s) => s === '')) fail('stop', 'stop strings must not be empty');
  return list as string[];
}

function parseResponseFormat(body: Obj): ResponseFormat | undefined {
  const v = opt(body, 'response_format');
  if (v === undefined) return undefined;
  if (!isObj(v)) fail('response_format', `must be an object (got ${typeName(v)})`);
  if (v.type === 'text' || v.type === 'json_object') return { type: v.type };
  if (v.type === 'json_schema') {
    const js = v.json_schema;
    if (!isObj(js)) fail('response_format.json_schema', `must be an object (got ${typeName(js)})`);
    if (js.schema !== undefined && js.schema !== null && !isObj(js.schema)) fail('response_format.json_schema.schema', `must be an object (got ${typeName(js.schema)})`);
    return { type: 'json_schema', json_schema: js as { name?: string; schema?: Obj; strict?: boolean | null } };
  }
  fail('response_format.type', `must be "text", "json_object" or "json_schema" (got ${JSON.stringify(v.type)})`);
}

function parsePart(p: unknown, param: string, role: string): RequestPart {
  if (!isObj(p)) fail(param, `must be an object (got ${typeName(p)})`);
  switch (p.type) {
    case 'text':
      if (typeof p.text !== 'string') fail(`${param}.text`, `must be a string (got ${typeName(p.text)})`);
      return { type: 'text', text: p.text };
    case 'image_url': {
      if (role !== 'user') fail(`${param}.type`, `image parts are accepted in user messages only (this one is ${role})`);
      const iu = p.image_url;
      if (!isObj(iu)) fail(`${param}.image_url`, `must be an object with a url (got ${typeName(iu)})`);
      if (typeof iu.url !== 'string') fail(`${param}.image_url.url`, `must be a string (got ${typeName(iu.url)})`);
      if (!/^(data|https?):/i.test(iu.url)) fail(`${param}.image_url.url`, `must be a data: or http(s): URL (got "${iu.url.slice(0, 40)}")`);
      return { type: 'image_url', url: iu.url, param: `${param}.image_url.url` };
    }
    case 'image':
      if (role !== 'user') fail(`${param}.type`, `image parts are accepted in user messages only (this one is ${role})`);
      if (typeof p.image !== 'object' || p.image === null) fail(`${param}.image`, `must be an image object (File, Blob, canvas, ImageBitmap, ImageData, img), got ${typeName(p.image)}`);
      return { type: 'image', image: p.image as ImageInput, param: `${param}.image` };
    case 'input_audio':
    case 'file':
    case 'refusal':
      unsupported(`${param}.type`, `a "${p.type}" content part`);
    default:
      fail(`${param}.type`, `must be "text", "image_url" or "image" (got ${JSON.stringify(p.type)})`);
  }
}

function parseMessage(m: unknown, i: number): RequestMessage {
  const param = `messages[${i}]`;
  if (!isObj(m)) fail(param, `must be an object (got ${typeName(m)})`);
  const role = m.role;
  if (role === 'tool' || role === 'function') unsupported(`${param}.role`, `a "${role}" message (tool calling)`);
  if (role !== 'system' && role !== 'developer' && role !== 'user' && role !== 'assistant') {
    fail(`${param}.role`, `must be "system", "developer", "user" or "assistant" (got ${JSON.stringify(role)})`);
  }
  if (role === 'assistant') {
    const calls = opt(m, 'tool_calls');
    if (Array.isArray(calls) && calls.length) unsupported(`${param}.tool_calls`, 'tool calling');
    if (opt(m, 'function_call') !== undefined) unsupported(`${param}.function_call`, 'tool calling');
  }
  // developer messages are the newer name of system messages.
  const engineRole = role === 'developer' ? 'system' : role;
  const content = m.content;
  if (typeof content === 'string') return { role: engineRole, content };
  if (!Array.isArray(content)) fail(`${param}.content`, `must be a string or an array of content parts (got ${typeName(content)})`);
  return { role: engineRole, content: content.map((p, j) => parsePart(p, `${param}.content[${j}]`, engineRole)) };
}

/** Checks and maps a `chat.completions.create` body. Throws `RequestError` naming the parameter. */
export function parseChatRequest(body: unknown): ChatRequest {
  if (!isObj(body)) fail('body', `must be a JSON object (got ${typeName(body)})`);
  const messages = body.messages;
  if (!Array.isArray(messages)) fail('messages', `must be an array (got ${typeName(messages)})`);
  if (!messages.length) fail('messages', 'must hold at least one message');
  const model = opt(body, 'model');
  if (model !== undefined && typeof model !== 'string') fail('model', `must be a string (got ${typeName(model)})`);
  const stream = bool(body, 'stream') ?? false;
  const so = opt(body, 'stream_options');
  if (so !== undefined && !isObj(so)) fail('stream_options', `must be an object (got ${typeName(so)})`);
  refuseUnsupported(body);

  const maxTokens = num(body, 'max_completion_tokens', { integer: true, min: 1 }) ?? num(body, 'max_tokens', { integer: true, min: 1 });
  const options: ChatRequest['options'] = {
    maxTokens,
    temperature: num(body, 'temperature', { min: 0, max: 2 }),
    topP: num(body, 'top_p', { gt: 0, max: 1 }),
    topK: num(body, 'top_k', { integer: true, min: 0, max: TOP_K_MAX }),
    seed: num(body, 'seed', { integer: true }),
    repetitionPenalty: num(body, 'repetition_penalty', { gt: 0 }),
    longestEdge: num(body, 'longest_edge', { integer: true, min: 1 }),
    stop: parseStop(body),
  };
  for (const k of Object.keys(options) as (keyof typeof options)[]) if (options[k] === undefined) delete options[k];
  const responseFormat = parseResponseFormat(body);
  return {
    messages: messages.map(parseMessage),
    options,
    stream,
    ...(model !== undefined ? { model } : {}),
    ...(responseFormat ? { responseFormat } : {}),
  };
}
