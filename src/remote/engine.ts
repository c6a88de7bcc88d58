/**
 * The remote backend: the same `chat.completions.create` sent to an OpenAI-compatible server
 * (vLLM, `pixtral-webgpu serve`, a hosted API) through the official `openai` client, so its SSE
 * parsing, headers and aborts are the SDK's. Image objects become `data:` URLs at the model's
 * size (`image-url.ts`); `image_url` parts and every other parameter are sent as given (the
 * server decides what it supports, e.g. vLLM's `response_format`), except the local-only
 * extension `longest_edge`, which sets the resize here.
 *
 * `dangerouslyAllowBrowser` is set: in a page, `apiKey` is visible to its users, so it must be
 * the key of a proxy you control (or none), never a provider's secret key.
 */
import OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionCreateParams } from 'openai/resources/chat/completions';
import { AbortError, RequestError } from '../errors.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, sleep, type RetryPolicy } from '../weights/retry.js';
import type { ImageInput } from '../image/decode.js';
import type { ChatCompletion, ChatCompletionChunk, ChatEngine, Completions, ContentPart, CreateParams, EngineInfo, MessageParam, RequestOptions } from '../openai/types.js';
import { imageToDataUrl, type RemoteImageOptions } from './image-url.js';
import { isSafeToRetry, retryAfterHeader, toTypedError } from './errors.js';

export interface RemoteEngineOptions {
  /** The server's OpenAI base URL, e.g. `https://my-vllm/v1` or `http://127.0.0.1:8080/v1`. */
  baseURL: string;
  /** The model name the server knows (vLLM: the Hugging Face id it serves). */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`; in a page, a proxy's key, never a secret one. */
  apiKey?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Resize and encoding of image objects. */
  image?: RemoteImageOptions;
  /** Retries of requests the server refused before running them (default 2). */
  retries?: number;
  /** Per-request timeout in ms (default 10 minutes). */
  timeoutMs?: number;
  /** Replaces `fetch` (tests, custom transports). */
  fetch?: typeof fetch;
}

type Obj = Record<string, unknown>;

/** Messages with image objects replaced by data: URLs; everything else as given. */
async function encodeImages(messages: MessageParam[], image: RemoteImageOptions): Promise<ChatCompletionCreateParams['messages']> {
  const out: Obj[] = [];
  for (const [i, m] of messages.entries()) {
    const content = (m as { content?: unknown }).content;
    if (!Array.isArray(content)) {
      out.push(m as Obj);
      continue;
    }
    const parts: ChatCompletionContentPart[] = [];
    for (const [j, p] of (content as ContentPart[]).entries()) {
      if (p && p.type === 'image') {
        if (typeof p.image !== 'object' || p.image === null) throw new RequestError(`messages[${i}].content[${j}].image`, 'must be an image object');
        parts.push({ type: 'image_url', image_url: { url: await imageToDataUrl(p.image as ImageInput, image) } });
      } else parts.push(p as ChatCompletionContentPart);
    }
    out.push({ ...(m as Obj), content: parts });
  }
  return out as unknown as ChatCompletionCreateParams['messages'];
}

class RemoteCompletions {
  constructor(
    private readonly client: OpenAI,
    private readonly opts: RemoteEngineOptions,
    private readonly retry: RetryPolicy,
  ) {}

  private async send<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= this.retry.retries || !isSafeToRetry(e) || signal?.aborted) throw toTypedError(e, this.opts.baseURL);
        await sleep(backoffDelay(attempt, this.retry, Math.random, parseRetryAfter(retryAfterHeader(e))), signal);
      }
    }
  }

  async create(params: CreateParams, options: RequestOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const signal = options.signal ?? undefined;
    if (signal?.aborted) throw new AbortError();
    if (!params || !Array.isArray(params.messages)) throw new RequestError('messages', 'must be an array');
    const { longest_edge, messages, ...rest } = params;
    const image = { ...this.opts.image, ...(longest_edge ? { longestEdge: longest_edge } : {}) };
    const body = { ...rest, model: this.opts.model, messages: await encodeImages(messages, image) } as Obj;
    if (!params.stream) {
      return this.send(() => this.client.chat.completions.create({ ...body, stream: false } as never, { signal }), signal) as Promise<ChatCompletion>;
    }
    // The last chunk carries usage, as the local engine's does.
    const streamOptions = { include_usage: true, ...(rest.stream_options ?? {}) };
    const stream = await this.send(
      () => this.client.chat.completions.create({ ...body, stream: true, stream_options: streamOptions } as never, { signal }) as unknown as Promise<AsyncIterable<ChatCompletionChunk>>,
      signal,
    );
    return this.mapErrors(stream, signal);
  }

  /**
   * Errors while reading the stream (a dropped connection) become typed ones too; an abort,
   * which the SDK's stream turns into a quiet end, is an `AbortError` as in the local engine.
   */
  private async *mapErrors(stream: AsyncIterable<ChatCompletionChunk>, signal?: AbortSignal): AsyncGenerator<ChatCompletionChunk> {
    try {
      yield* stream;
    } catch (e) {
      throw toTypedError(e, this.opts.baseURL);
    }
    if (signal?.aborted) throw new AbortError();
  }
}

export function remoteInfo(opts: RemoteEngineOptions): EngineInfo {
  return { backend: 'remote', model: opts.model, baseURL: opts.baseURL };
}

/** An engine that sends every request to `baseURL`. Nothing is sent until the first `create`. */
export function createRemoteEngine(opts: RemoteEngineOptions): ChatEngine {
  if (typeof opts.baseURL !== 'string' || !/^https?:\/\//i.test(opts.baseURL)) throw new RequestError('baseURL', `must be an http(s) URL (got ${JSON.stringify(opts.baseURL)})`);
  if (typeof opts.model !== 'string' || !opts.model) throw new RequestError('model', 'must name the model the server serves');
  const client = new OpenAI({
    baseURL: opts.baseURL,
    // The SDK insists on a key; servers without auth ignore the header.
    apiKey: opts.apiKey ?? 'none',
    defaultHeaders: opts.headers,
    dangerouslyAllowBrowser: true,
    // Retries are ours (only where safe), not the SDK's (which also retries 500s and timeouts).
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 600_000,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  const retry = { ...DEFAULT_RETRY, retries: opts.retries ?? 2 };
  return {
    info: remoteInfo(opts),
    chat: { completions: new RemoteCompletions(client, opts, retry) as unknown as Completions },
    dispose: async () => undefined,
  };
}
