/**
 * What `askDocument` needs from an engine, and the adapter that gives it one call shape: a
 * loaded model (`loadPixtral` in the browser or in Node: `info` plus `chat` streaming with
 * stats), or what `createEngine` returns (local: its `model`; remote: `chat.completions.create`,
 * whose `usage` gives the token counts). Nothing here depends on a class.
 */
import { RequestError } from '../errors.js';
import type { ChatMessage, ChatOptions, GenerationStats, ModelInfo } from '../engine/types.js';
import type { ImageInput } from '../image/decode.js';
import type { ResponseFormat } from '../grammar/response-format.js';
import type { CallStats } from './types.js';

/** A loaded model: `PixtralModel` (browser), the Node entry's model, or anything shaped alike. */
export interface DocumentModel {
  readonly info: ModelInfo;
  chat(messages: ChatMessage[], opts?: ChatOptions): AsyncIterable<string> & { readonly stats: Promise<GenerationStats> };
}

/** The part of `createEngine`'s result used here (local or remote). */
export interface DocumentChatEngine {
  readonly model?: DocumentModel;
  readonly chat: {
    readonly completions: {
      create(
        params: {
          messages: { role: 'user'; content: ({ type: 'text'; text: string } | { type: 'image'; image: ImageInput })[] }[];
          max_tokens?: number;
          temperature?: number;
          response_format?: OpenAIResponseFormat;
          stream?: false;
        },
        options?: { signal?: AbortSignal },
      ): Promise<{ choices: { message: { content: string | null }; finish_reason: string | null }[]; usage?: { prompt_tokens: number; completion_tokens: number } }>;
    };
  };
}

export type DocumentEngine = DocumentModel | DocumentChatEngine;

/** OpenAI's own `response_format` type, where a JSON schema's `name` is required. */
type OpenAIResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null } };

function openAIFormat(f: ResponseFormat | undefined): OpenAIResponseFormat | undefined {
  if (f?.type !== 'json_schema') return f;
  return { type: 'json_schema', json_schema: { ...f.json_schema, name: f.json_schema.name ?? 'response' } };
}

/** One user turn: images then text, as the model was trained (image first, question after). */
export type Part = { type: 'text'; text: string } | { type: 'image'; image: ImageInput };

export interface AskRequest {
  parts: Part[];
  maxTokens: number;
  longestEdge: number;
  responseFormat?: ResponseFormat;
  signal?: AbortSignal;
}

/** The engine reduced to the one call `askDocument` makes, plus the image geometry it needs. */
export interface Asker {
  /** The model's longest image edge (`image_size`) and pixels per image token. */
  imageSize: number;
  tokenPx: number;
  /** Context tokens (local); remote: unknown, so Infinity. */
  maxContext: number;
  ask(r: AskRequest): Promise<{ text: string; stats: CallStats }>;
}

const isModel = (e: DocumentEngine): e is DocumentModel => typeof (e as DocumentModel).info?.config === 'object' && typeof (e as DocumentModel).chat === 'function';

function modelAsker(m: DocumentModel): Asker {
  return {
    imageSize: m.info.config.vision.imageSize,
    tokenPx: m.info.tokenPixels,
    maxContext: m.info.maxContext,
    async ask(r) {
      const t0 = performance.now();
      const stream = m.chat([{ role: 'user', content: r.parts }], {
        maxTokens: r.maxTokens,
        temperature: 0,
        longestEdge: r.longestEdge,
        responseFormat: r.responseFormat,
        signal: r.signal,
      });
      let text = '';
      for await (const d of stream) text += d;
      const s = await stream.stats;
      return {
        text,
        stats: {
          promptTokens: s.promptTokens,
          imageTokens: s.imageTokens,
          generatedTokens: s.generatedTokens,
          kvTokens: s.promptTokens + s.generatedTokens,
          imagesPreprocessed: s.imagesPreprocessed,
          finishReason: s.finishReason,
          ms: performance.now() - t0,
        },
      };
    },
  };
}

/** Remote servers resize images themselves; Pixtral-12B's geometry is assumed (1024 px, 16 px tokens). */
function completionsAsker(e: DocumentChatEngine): Asker {
  return {
    imageSize: 1024,
    tokenPx: 16,
    maxContext: Infinity,
    async ask(r) {
      const t0 = performance.now();
      const res = await e.chat.completions.create(
        { messages: [{ role: 'user', content: r.parts }], max_tokens: r.maxTokens, temperature: 0, response_format: openAIFormat(r.responseFormat), stream: false },
        { signal: r.signal },
      );
      const c = res.choices[0];
      const promptTokens = res.usage?.prompt_tokens ?? 0;
      const generatedTokens = res.usage?.completion_tokens ?? 0;
      const finish = c?.finish_reason === 'stop' ? 'eos' : c?.finish_reason === 'length' ? 'length' : 'unknown';
      return {
        text: c?.message.content ?? '',
        stats: { promptTokens, imageTokens: 0, generatedTokens, kvTokens: promptTokens + generatedTokens, imagesPreprocessed: 0, finishReason: finish, ms: performance.now() - t0 },
      };
    },
  };
}

/** The engine as an `Asker`; anything else is a `RequestError` naming it. */
export function askerFor(engine: DocumentEngine): Asker {
  if (engine && isModel(engine)) return modelAsker(engine);
  const ce = engine as DocumentChatEngine;
  if (ce?.model && isModel(ce.model)) return modelAsker(ce.model);
  if (typeof ce?.chat?.completions?.create === 'function') return completionsAsker(ce);
  throw new RequestError('engine', 'expected what loadPixtral or createEngine returns (an object with info and chat)');
}
