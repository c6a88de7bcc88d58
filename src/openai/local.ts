/**
 * `chat.completions.create` over a loaded model (the browser's `PixtralModel`, or any object
 * with the same `info` / `chat` / `dispose`, such as the Node entry's model): OpenAI parameters
 * in (`request.ts`), image URLs resolved (`images.ts`), the model's own chat stream run, and
 * OpenAI objects out (`response.ts`). The model stays usable through `model.chat` at the same
 * time: both go through the one engine, which serves one call at a time.
 *
 * Errors before generation (bad parameters, undecodable images, a prompt over the context)
 * reject `create` itself, in streaming mode too: a stream is handed out only once the prompt
 * was accepted and the first delta (or the end) arrived, as an HTTP client sees a status first.
 */
import { AbortError, ImageError, PixtralError } from '../errors.js';
import type { ChatMessage, GenerationStats, ModelInfo } from '../engine/types.js';
import type { ImageInput } from '../image/decode.js';
import { resolveImageUrl, type ImageUrlOptions } from './images.js';
import { parseChatRequest, type ChatRequest, type RequestMessage } from './request.js';
import { requestResponseFormat } from './response-format.js';
import { chunk, completion, responseHead, type ResponseHead } from './response.js';
import type { ChatBackend, ChatCompletion, ChatCompletionChunk, ChatEngine, Completions, CreateParams, EngineInfo, RequestOptions } from './types.js';

export type { ChatBackend };

export type LocalEngineOptions = Omit<ImageUrlOptions, 'signal'>;

export function localInfo(info: ModelInfo): EngineInfo {
  const a = info.adapter;
  return {
    backend: 'local',
    model: info.name,
    dtype: info.dtype,
    context: info.maxContext,
    adapter: `${[a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown'}${a.description ? ` (${a.description})` : ''}`,
    local: info,
  };
}

/** Request messages -> engine messages: image URLs fetched or decoded from data: URLs. */
async function engineMessages(messages: RequestMessage[], o: ImageUrlOptions): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') {
      out.push({ role: m.role, content: m.content });
      continue;
    }
    const parts: Exclude<ChatMessage['content'], string> = [];
    for (const p of m.content) {
      if (p.type === 'text') parts.push(p);
      else if (p.type === 'image') parts.push({ type: 'image', image: p.image });
      else parts.push({ type: 'image', image: (await resolveImageUrl(p.url, p.param, o)) as ImageInput });
    }
    out.push({ role: m.role, content: parts });
  }
  return out;
}

/** The one image part of a request, if there is exactly one: an engine ImageError then names it. */
function soleImageParam(req: ChatRequest): string | undefined {
  const params = req.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'text' ? [] : [p.param]))));
  return params.length === 1 ? params[0] : undefined;
}

function nameImage(e: unknown, req: ChatRequest): unknown {
  const param = soleImageParam(req);
  if (e instanceof ImageError && param && !e.message.startsWith(param)) return new ImageError(`${param}: ${e.message}`, { cause: e });
  return e;
}

/** Links the caller's signal to one owned here (which also stops a stream the caller leaves). */
function linkedAbort(signal: AbortSignal | null | undefined): AbortController {
  const ac = new AbortController();
  if (signal?.aborted) ac.abort(signal.reason);
  else signal?.addEventListener('abort', () => ac.abort(signal.reason), { once: true });
  return ac;
}

class LocalCompletions {
  constructor(
    private readonly model: ChatBackend,
    private readonly opts: LocalEngineOptions,
  ) {}

  async create(params: CreateParams, options: RequestOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const req = parseChatRequest(params);
    const responseFormat = requestResponseFormat(req.responseFormat);
    const ac = linkedAbort(options.signal);
    const messages = await engineMessages(req.messages, { ...this.opts, signal: ac.signal });
    const head = responseHead(this.model.info.name);
    const stream = this.model.chat(messages, { ...req.options, ...(responseFormat ? { responseFormat } : {}), signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    const aborted = () => {
      throw options.signal?.reason instanceof PixtralError ? options.signal.reason : new AbortError();
    };
    try {
      if (!req.stream) {
        let text = '';
        for (let r = await it.next(); !r.done; r = await it.next()) text += r.value;
        const stats = await stream.stats;
        // The engine ends an aborted turn early without an error once tokens were generated.
        if (ac.signal.aborted) aborted();
        return completion(head, text, stats);
      }
      const first = await it.next();
      return this.chunks(head, first, it, stream.stats, ac, aborted);
    } catch (e) {
      ac.abort();
      throw nameImage(e, req);
    }
  }

  private async *chunks(
    head: ResponseHead,
    first: IteratorResult<string>,
    it: AsyncIterator<string>,
    stats: Promise<GenerationStats>,
    ac: AbortController,
    aborted: () => never,
  ): AsyncGenerator<ChatCompletionChunk> {
    let finished = false;
    try {
      yield chunk(head, { role: 'assistant', content: '' });
      for (let r = first; !r.done; r = await it.next()) yield chunk(head, { content: r.value });
      const end = await stats;
      if (ac.signal.aborted) aborted();
      finished = true;
      yield chunk(head, {}, end);
    } finally {
      // A consumer that stops iterating early stops the generation too.
      if (!finished) ac.abort();
    }
  }
}

/** An OpenAI-shaped engine over an already loaded model; `dispose()` disposes the model. */
export function engineFromModel(model: ChatBackend, opts: LocalEngineOptions = {}): ChatEngine & { readonly model: ChatBackend } {
  const completions = new LocalCompletions(model, opts) as unknown as Completions;
  return {
    info: localInfo(model.info),
    chat: { completions },
    model,
    dispose: () => model.dispose(),
  };
}
