/**
 * `pixtral-webgpu/node`: the library in Node on Dawn (npm `webgpu`): `loadPixtral` with the
 * browser's API and types, models from a local folder (read in place) or an http(s) URL (disk
 * cache), images from files, bytes and PDF pages. Importing it has no side effects.
 *
 *   import { loadPixtral } from 'pixtral-webgpu/node';
 *   const model = await loadPixtral({ url: './models/pixtral-12b-q4' });
 *   const { text } = await model.complete([{ role: 'user', content: [{ type: 'image', image: 'scan.pdf:1' }, { type: 'text', text: 'Title?' }] }]);
 *   await model.dispose();
 */
export { loadPixtral, loadPixtral as loadModel, NodePixtralModel, modelOpener, type NodeLoadOptions, type NodeChatMessage, type NodeImagePart } from './model.js';
export { resolveImage, type NodeImageInput, type ResolvedImage, type ResolveImageOptions } from './inputs.js';
export { decodeImageBytes, decodeImageSource, isPdf, type NodeImageSource } from './images.js';
export { renderPdfPages, parsePageSelection, splitPageSpec, pdfPageCount, DEFAULT_DPI, type PdfPage, type RenderPdfOptions } from './pdf.js';
export { openRemoteModel, defaultCacheDir, listDiskCache, deleteDiskCached, CACHE_ENV, type RemoteModelOptions, type CachedModelEntry } from './cache.js';
export { openModelFolder, readManifestFile, DiskModelSource, isLocalModel } from './files.js';
export { installWebGPU, listAdapters, ADAPTER_ENV, type NodeWebGPUOptions, type InstalledWebGPU, type DawnAdapterEntry } from './gpu.js';
export type { ChatStream } from '../client.js';
export type {
  ChatMessage, ChatOptions, ChatResult, FinishReason, GenerateRequest, GenerateResult, GenerationOptions, GenerationStats, ModelInfo,
} from '../engine/index.js';
export type { LoadProgress, LoadPhase } from '../weights/progress.js';
export type { RgbaImage } from '../image/decode.js';
export { describeAdapter } from '../gpu/device.js';
export * from '../errors.js';
export {
  askDocument,
  longestEdgeForTokens,
  DEFAULT_PAGE_TOKENS,
  type DocumentEngine,
  type AskDocumentOptions,
  type DocumentInput,
  type PageProgress,
  type DocumentStats,
  type PerPageResult,
  type SynthesisResult,
} from '../documents/node.js';
