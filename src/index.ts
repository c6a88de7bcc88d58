/**
 * pixtral-webgpu: Mistral's Pixtral (and the mistral3 family) in the browser on WebGPU.
 * Importing this module has no side effects: nothing touches `navigator.gpu` until a model is
 * loaded. The engine itself is not exported here: it runs in the worker (or is imported on
 * demand with `worker: false`), so this bundle does not carry it and its shaders a second time.
 */
export { loadPixtral, PixtralModel, type ChatStream, type LoadPixtralOptions } from './client.js';
/** Neutral alias: the same loader runs Pixtral and the mistral3 family. */
export { loadPixtral as loadModel } from './client.js';
export type {
  ChatContent,
  ChatMessage,
  ChatOptions,
  ChatResult,
  FinishReason,
  GenerateRequest,
  GenerateResult,
  GenerationOptions,
  GenerationStats,
  LoadOptions,
  ModelInfo,
} from './engine/index.js';
export type { SamplingOptions } from './model/sampler.js';
export {
  preprocessImage,
  preprocessOptionsFor,
  sizeForImage,
  checkImageHeader,
  IMAGE_LIMITS,
  type ImageInput,
  type PreprocessedImage,
  type PreprocessOptions,
} from './image/index.js';
export { loadTokenizer, type Tokenizer } from './text/tokenizer.js';
export { listCachedModels, deleteCachedModel, storageUsage } from './weights/store.js';
export type { LoadProgress, LoadPhase } from './weights/progress.js';
export { configFromHf, configFromNative, PIXTRAL_12B_2409, type ModelConfig } from './config.js';
export * from './presets.js';
export { gpuAvailable, describeAdapter } from './gpu/device.js';
export { inspectGguf, summarizeGguf, readGgufHeader, urlSource, blobSource, type GgufSummary, type GgufHeader } from './gguf/index.js';
export * from './errors.js';
export {
  createEngine,
  engineFromModel,
  type ChatBackend,
  type ChatEngine,
  type CreateEngineOptions,
  type CreateParams,
  type EngineInfo,
  type ImageObjectPart,
  type LocalCreateOptions,
  type ParamExtensions,
} from './openai/index.js';
export { checkResponseFormat, type ResponseFormat } from './grammar/response-format.js';
export type { RemoteEngineOptions } from './remote/engine.js';
export type { RemoteImageOptions } from './remote/image-url.js';
export {
  askDocument,
  openBrowserPdf,
  longestEdgeForTokens,
  DEFAULT_PAGE_TOKENS,
  type BrowserPdf,
  type DocumentEngine,
  type DocumentModel,
  type DocumentChatEngine,
  type AskDocumentOptions,
  type DocumentInput,
  type PageProgress,
  type CallStats,
  type DocumentStats,
  type PageAnswer,
  type PerPageResult,
  type PageNotes,
  type Citation,
  type SynthesisResult,
} from './documents/index.js';
