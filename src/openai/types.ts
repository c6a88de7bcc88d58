/**
 * The OpenAI-compatible surface: request and response types come from the `openai` package (as
 * types only, so code written for the OpenAI SDK compiles unchanged and the browser bundle
 * carries none of its runtime), plus this library's documented extensions (`top_k`,
 * `longest_edge`, `repetition_penalty`, and `{ type: 'image', image }` content parts).
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionContentPart,
  ChatCompletionCreateParamsBase,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { ImageInput } from '../image/decode.js';
import type { ChatMessage, ChatOptions, GenerationStats, ModelInfo } from '../engine/types.js';

export type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam };

/** Extension: an image object instead of a URL (File, Blob, canvas, ImageBitmap, ImageData, img). */
export interface ImageObjectPart {
  type: 'image';
  image: ImageInput;
}

export type ContentPart = ChatCompletionContentPart | ImageObjectPart;

/** An OpenAI message whose content parts may also be `ImageObjectPart`s. */
export type MessageParam =
  | ChatCompletionMessageParam
  | { role: 'user' | 'system' | 'developer' | 'assistant'; content: string | ContentPart[]; name?: string };

/** Extensions beyond OpenAI's parameters (vLLM uses the same names for `top_k` and `repetition_penalty`). */
export interface ParamExtensions {
  /** Keep only the k most likely tokens (0 = off; at most the GPU sampler's bound, 64). */
  top_k?: number;
  /** Hugging Face repetition penalty (multiplicative, > 0, 1 = off) on tokens already in the context. */
  repetition_penalty?: number;
  /** Lower the longest image edge (pixels) to spend fewer image tokens. */
  longest_edge?: number;
}

/** OpenAI's parameters; `model` is optional (an engine serves one model; remote: `createEngine`'s). */
export type CreateParamsBase = Omit<ChatCompletionCreateParamsBase, 'messages' | 'stream' | 'model'> &
  ParamExtensions & { messages: MessageParam[]; model?: string };
export type CreateParamsNonStreaming = CreateParamsBase & { stream?: false | null };
export type CreateParamsStreaming = CreateParamsBase & { stream: true };
export type CreateParams = CreateParamsNonStreaming | CreateParamsStreaming;

/** The second argument of `create`, as in the OpenAI SDK. */
export interface RequestOptions {
  signal?: AbortSignal | null;
}

/** What an engine runs on and how big a prompt it takes. */
export interface EngineInfo {
  backend: 'local' | 'remote';
  /** The model's name (local: the converted manifest's; remote: the `model` sent to the server). */
  model: string;
  /** Local: the weights' dtype. */
  dtype?: ModelInfo['dtype'];
  /** Local: the context tokens allocated. */
  context?: number;
  /** Local: the adapter, as `vendor architecture (description)`. */
  adapter?: string;
  /** Remote: the server's base URL. */
  baseURL?: string;
  /** Set when a `fallback` is in use: why the local engine was not. */
  fallbackReason?: string;
  /** Local: the engine's full model info. */
  local?: ModelInfo;
}

/** The `chat.completions.create` overloads of the OpenAI SDK (a stream is an async iterable of chunks). */
export interface Completions {
  create(params: CreateParamsNonStreaming, options?: RequestOptions): Promise<ChatCompletion>;
  create(params: CreateParamsStreaming, options?: RequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(params: CreateParams, options?: RequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

/** What the local facade needs from a loaded model: `PixtralModel` (browser) and the Node entry's model have it. */
export interface ChatBackend {
  readonly info: ModelInfo;
  chat(messages: ChatMessage[], opts?: ChatOptions): AsyncIterable<string> & { readonly stats: Promise<GenerationStats> };
  dispose(): Promise<void>;
}

/** The engine `createEngine` returns, local or remote: the same calls either way. */
export interface ChatEngine {
  readonly info: EngineInfo;
  /** Local: the loaded model itself (`model.chat`, the simple API, runs on the same engine). */
  readonly model?: ChatBackend;
  readonly chat: { readonly completions: Completions };
  /** Frees the GPU memory (local) or forgets the client (remote). */
  dispose(): Promise<void>;
}
