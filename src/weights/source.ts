/**
 * The extension point between "where a model's files live" and the engine: a `ModelSource`
 * gives the validated manifest and the verified bytes of each shard and of the tokenizer file.
 * The browser's IndexedDB cache (`ModelFiles`, `store.ts`) is one; `pixtral-webgpu/node` adds a
 * folder on disk read in place and a disk cache of a remote model. `LoadOptions.openModel`
 * picks one; without it the engine uses the IndexedDB downloader (`loadModelFiles`).
 */
import type { Manifest } from './manifest.js';
import type { ProgressCallback } from './progress.js';

export interface ModelSource {
  /** Where the model came from (base URL or folder), for messages. */
  readonly url: string;
  readonly manifest: Manifest;
  /**
   * All bytes of shard `index`, length-checked: the browser cache returns what was hashed when
   * it was stored (hash once, see `store.ts`), a folder read in place hashes as it reads; `verify`
   * forces a SHA-256 check where the source supports it (IntegrityError on a mismatch).
   */
  readShard(index: number, opts?: { verify?: boolean }): Promise<Uint8Array>;
  /** The tokenizer file's bytes, or null when the model has none. */
  readTokenizer(): Promise<Uint8Array | null>;
}

/** A model made available by an opener: its source and whether nothing had to be downloaded. */
export interface OpenedModel {
  files: ModelSource;
  manifest: Manifest;
  fromCache: boolean;
  /**
   * Lets go of the model's files (the browser's store holds a shared Web Lock on them while the
   * model is loaded, so another tab cannot delete them); absent where nothing is held.
   */
  release?(): Promise<void>;
}

export interface OpenModelOptions {
  url: string;
  offline?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  fetch?: typeof fetch;
  /** Re-hash cached files instead of trusting the check made when they were stored. */
  verify?: boolean;
  /** Retry a download that receives no byte for this long (ms). */
  stallTimeoutMs?: number;
}

/** Makes a model available (downloading what is missing, if it downloads at all). */
export type ModelOpener = (opts: OpenModelOptions) => Promise<OpenedModel>;
