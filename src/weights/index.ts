/**
 * Model files in the browser: the manifest format, the downloader with its IndexedDB cache,
 * cache management, and the streaming GPU upload.
 *
 *   const { files } = await loadModelFiles({ url, onProgress, signal });
 *   const weights = await uploadModel(files, gpu, { onProgress });
 *   weights.get('language_model.lm_head.weight').parts[0].data // GPUBuffer
 */
export * from './manifest.js';
export { loadModelFiles, type LoadModelOptions, type LoadedModel } from './fetch.js';
export { type LoadPhase, type LoadProgress, type ProgressCallback, ProgressTracker, containProgress } from './progress.js';
export { DEFAULT_STALL_TIMEOUT_MS } from './http.js';
export { DEFAULT_RETRY, backoffDelay, isRetryableStatus, type RetryPolicy } from './retry.js';
export { checkQuota, quotaMargin, type StorageLike, type StorageEstimateLike, type QuotaCheck } from './quota.js';
export {
  ModelFiles, listCachedModels, deleteCachedModel, storageUsage, normalizeBaseUrl, modelDbName, manifestFiles,
  type CachedModelInfo, type ModelRecord, type StorageUsage, type ModelFile,
} from './store.js';
export {
  uploadModel, readTensor, GpuWeights, AlignedWriter, defaultRowParts, rowGeometry,
  type GpuTensor, type GpuTensorPart, type UploadOptions,
} from './upload.js';
export { sha256Hex } from './hash.js';
export type { ModelSource, ModelOpener, OpenedModel, OpenModelOptions } from './source.js';
