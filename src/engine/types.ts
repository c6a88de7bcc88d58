/**
 * The engine's public request and result types: what `load`, `chat` and `generate` take and
 * give back, the same in the worker, in-thread and across comlink.
 */
import type { ByteSource } from '../gguf/source.js';
import type { GgufCacheBackend } from '../gguf/cache.js';
import type { GpuOptions } from '../gpu/device.js';
import type { ModelConfig } from '../config.js';
import type { ProgressCallback } from '../weights/progress.js';
import type { ModelOpener } from '../weights/source.js';
import type { SamplingOptions } from '../model/sampler.js';
import type { TextPart } from '../text/prompt.js';
import type { ImageInput } from '../image/decode.js';
import type { ResponseFormat } from '../grammar/response-format.js';

export interface LoadOptions {
  /** Base URL of a converted model (folder holding manifest.json), or of a llama.cpp text GGUF. */
  url: string;
  /** URL of the llama.cpp mmproj GGUF (vision tower + projector): `url` is then a text GGUF. */
  mmproj?: string;
  /**
   * Opens a GGUF (`url`, `mmproj`) for reading; default: HTTP Range requests (`urlSource`). The
   * Node entry reads local paths in place with it.
   */
  openGguf?: (url: string) => ByteSource;
  /**
   * Where a GGUF pair read by URL is cached (in-thread only): default the browser's IndexedDB
   * store; `pixtral-webgpu/node` passes its disk cache.
   */
  ggufCache?: GgufCacheBackend;
  /** Chunk size (bytes) of a new GGUF download: one Range request and one stored entry each. Default 32 MiB. */
  ggufChunkBytes?: number;
  /** Never touch the network: load from the cache only (IndexedDB, or Node's disk cache). */
  offline?: boolean;
  /** KV-cache length to allocate (capped by the model and the adapter; the cap is reported). */
  maxContext?: number;
  /**
   * KV-cache element type. Default: 'f16' for q4 models (half the memory: Pixtral-12B at 8k
   * context needs 1.34 GB instead of 2.7 GB; logits move by ~1e-3), 'f32' otherwise.
   */
  kvCache?: 'f16' | 'f32';
  /**
   * Vision-encoder patches encoded in one pass (default: one full-size image, e.g. 64 x 64 for
   * Pixtral-12B). Images are encoded in groups that fit, so this bounds activation memory, not
   * the number of images: a prompt holds as many images as its context allows.
   */
  maxPatches?: number;
  /**
   * Where the vision transformer's layer weights live: 'gpu' (default) or 'host': kept in host
   * memory and streamed through two GPU layer slots while an image is encoded (the same output,
   * bit for bit). Saves all but two layers' bytes of GPU memory (0.74 GB for Pixtral-12B's 24
   * f16 layers) at the cost of uploading those bytes again for every image encoded.
   */
  visionWeights?: 'gpu' | 'host';
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  gpu?: GpuOptions;
  /** Replaces fetch (tests, auth headers). */
  fetch?: typeof fetch;
  /**
   * Re-hash every cached file at load instead of trusting the SHA-256 checked when it was
   * downloaded; a file that fails is downloaded again. Default false.
   */
  verify?: boolean;
  /** A download request that receives no byte for this long is retried, then NetworkError. Default 30 000 ms. */
  stallTimeoutMs?: number;
  /**
   * Where the model's files come from (in-thread only: a function does not cross to a worker).
   * Default: the browser's IndexedDB downloader; `pixtral-webgpu/node` passes its disk opener.
   */
  openModel?: ModelOpener;
}

/**
 * What `Engine.load` and `loadPixtral` take: `LoadOptions` whose GGUF pair may also be given as
 * `File`/`Blob` objects (picked from disk, read in place: `src/gguf/file-inputs.ts`).
 */
export interface LoadRequest extends Omit<LoadOptions, 'url' | 'mmproj'> {
  /** As `LoadOptions.url`, or a text GGUF as a `File`/`Blob` (then `mmproj` is required). */
  url: string | Blob;
  /** As `LoadOptions.mmproj`, or the mmproj GGUF as a `File`/`Blob`. */
  mmproj?: string | Blob;
}

export interface ModelInfo {
  name: string;
  modelType: ModelConfig['modelType'];
  /** Storage dtype of the decoder's linear weights; `gguf`: ggml blocks as the GGUF stores them. */
  dtype: 'q4' | 'f16' | 'f32' | 'gguf';
  config: ModelConfig;
  /** Context tokens actually allocated. */
  maxContext: number;
  /** KV-cache element type in use. */
  kvCache: 'f16' | 'f32';
  /** Vision-encoder patches per pass (images are encoded in groups that fit). */
  maxPatches: number;
  /** Pixels per side of one image token (patch x merge). */
  tokenPixels: number;
  /** Bytes of weights on the GPU (host-placed vision layers excepted). */
  weightBytes: number;
  /** Where the vision transformer's layer weights live (the `visionWeights` load option). */
  visionWeights: 'gpu' | 'host';
  adapter: {
    vendor: string;
    architecture: string;
    description: string;
    f16: boolean;
    /**
     * The prefill's kernel for quantised weights: `subgroupMatrix` (the adapter's matrix units,
     * f16 operands; GPUs whose load-time check passed) or `tiled`.
     */
    prefillMatmul: 'subgroupMatrix' | 'tiled';
    /**
     * The decoder's prefill attention: `subgroupMatrix` (the same check, f16 operands; head_dim a
     * multiple of the fragment) or `simt` (one thread per query row, f32).
     */
    prefillAttention: 'subgroupMatrix' | 'simt';
  };
  fromCache: boolean;
}

export type ChatContent = string | (TextPart | { type: 'image'; image: ImageInput })[];

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: ChatContent;
}

export interface GenerationOptions extends SamplingOptions {
  /** Tokens to generate at most (default 256; clipped to the context left). */
  maxTokens?: number;
  /** Stop when the text contains this string or one of these (not included in the output). */
  stop?: string | string[];
  /** Stops within one decode step. */
  signal?: AbortSignal;
}

export interface ChatOptions extends GenerationOptions {
  /** Lower the longest image edge (pixels) to spend fewer image tokens. */
  longestEdge?: number;
  /**
   * OpenAI's `response_format`: `json_object` or `json_schema` constrain decoding with a grammar
   * (xgrammar), so the answer always parses and validates; `text` (the default) does not.
   */
  responseFormat?: ResponseFormat;
}

export type FinishReason = 'eos' | 'length' | 'stop' | 'abort';

export interface GenerationStats {
  promptTokens: number;
  imageTokens: number;
  /** Prompt positions reused from the KV cache (earlier turns, images). */
  reusedTokens: number;
  imagesEncoded: number;
  /**
   * Images decoded and resized for this turn; images met in an earlier turn (the same `Blob`,
   * `ImageBitmap` or `ImageData` content) come from the engine's image cache and are not counted.
   */
  imagesPreprocessed: number;
  generatedTokens: number;
  imageEncodeMs: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  decodeMs: number;
  decodeTokensPerSecond: number;
  finishReason: FinishReason;
  /** CPU time computing the grammar's allowed-token masks (0 without a response_format). */
  grammarMs: number;
}

/** A finished chat turn: the whole answer (also streamed through `onDelta`) and its stats. */
export interface ChatResult {
  text: string;
  stats: GenerationStats;
}

export interface GenerateRequest extends GenerationOptions {
  /** Already tokenised, image tokens included (an array or an integer typed array). */
  inputIds: number[] | Uint32Array | Int32Array;
  /** Normalised CHW pixels, sizes multiples of the token size, in prompt order. */
  images?: { pixels: Float32Array; height: number; width: number }[];
  maxNewTokens?: number;
  /** Logits of every prompt position [promptTokens, V] (evaluation). */
  returnLogits?: boolean;
}

export interface GenerateResult {
  tokenIds: number[];
  logits?: Float32Array;
  stats: GenerationStats;
}
