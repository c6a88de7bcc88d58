/**
 * Downloads a converted model (manifest.json + shards + tokenizer file) from a base URL on any
 * static host (a Hugging Face `resolve/main/` URL too) into the IndexedDB cache (`store.ts`).
 *
 * - The manifest is fetched and validated first; its SHA-256 names the model in the cache.
 *   When the network fails, or with `offline: true`, the newest cached version for the URL is
 *   used, with no request at all.
 * - Only files missing from the cache are fetched (resume after an abort or a closed tab), with
 *   bounded concurrency, each response body read as a stream so progress moves within a shard.
 * - Network errors, 5xx, 408 and 429, and a request that receives no byte for `stallTimeoutMs`
 *   (default 30 s), are retried with exponential backoff (`http.ts`, `retry.ts`); 404 and other
 *   4xx fail at once with NetworkError.
 * - The query string of the given URL (a signed URL's signature) is sent with the manifest, the
 *   tokenizer and every shard; the cache keys the model by the URL without it (`normalizeBaseUrl`).
 * - Every file's length and SHA-256 are checked before it is stored; a mismatch refetches once
 *   (counted as a retry), a second mismatch throws IntegrityError naming the file, which is
 *   not stored.
 * - Before any write, `storage.estimate()` must leave room for the missing bytes plus a margin
 *   (`quota.ts`), else QuotaError and nothing is written; when the browser gives no estimate, a
 *   progress event with a `warning` says so and the download goes on. `storage.persist()` is
 *   requested.
 * - Other tabs and workers of the origin (`locks.ts`): the load holds the model's shared Web Lock
 *   until `release()`, and checks and downloads under the model's download lock, so a second
 *   context waits for the first one's download instead of downloading again.
 * - The AbortSignal is honoured everywhere: an abort rejects promptly with AbortError and no
 *   further request is made. Files already stored stay stored.
 */
import { formatBytes, IntegrityError, NetworkError, QuotaError, throwIfAborted, FormatError } from '../errors.js';
import { validateManifest, type Manifest } from './manifest.js';
import { sha256Hex } from './hash.js';
import { containProgress, ProgressTracker, type ProgressCallback } from './progress.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import { holdModel, ifUnused, whileDownloading } from './locks.js';
import { abortErrorFrom, DEFAULT_STALL_TIMEOUT_MS, fetchOnce, fileUrl, Retryable, withRetries, type HttpCtx } from './http.js';
import { checkQuota, defaultStorage, estimateStorage, freeBytes, type StorageLike } from './quota.js';
import {
  allRecords, deleteModel, findCachedModel, getManifestBytes, getRecord, manifestFiles, ModelFiles, normalizeBaseUrl, presentFiles, putFile,
  putManifestBytes, putRecord, type ModelFile,
} from './store.js';

export interface LoadModelOptions {
  /** Base URL of the model folder (or of its manifest.json). */
  url: string;
  /** Use the cache only; never touch the network. */
  offline?: boolean;
  signal?: AbortSignal;
  /**
   * Progress events. An exception thrown here (or a rejected promise returned) does not stop
   * the load: it goes on without further events, and the error is logged once (`containProgress`).
   */
  onProgress?: ProgressCallback;
  /** Minimum interval between two per-chunk progress events, ms (0: every chunk). Default 50. */
  progressIntervalMs?: number;
  /** Files downloaded at the same time. Default 3. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /**
   * A request that receives no byte for this long (waiting for the headers included) is
   * aborted and retried like a network error; out of retries, the load fails with NetworkError.
   * Default 30 000 ms.
   */
  stallTimeoutMs?: number;
  /** Replaces the wait between retries (tests record the delays instead of waiting). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Replaces `globalThis.fetch` (tests, custom auth headers, a service-worker bypass...). */
  fetch?: typeof fetch;
  /** Replaces `navigator.storage` (quota estimate, persist). */
  storage?: StorageLike | null;
  /**
   * Re-hash every cached file at load time instead of trusting the SHA-256 checked when it was
   * stored; a file that fails is deleted and downloaded again. Default false: files are hashed
   * once, when they arrive from the network.
   */
  verify?: boolean;
  /**
   * Once this version is complete, delete other cached versions of the same URL (a model
   * re-converted on the server gets a new manifest hash). Default true; ignored offline.
   */
  pruneOldVersions?: boolean;
}

export interface LoadedModel {
  files: ModelFiles;
  manifest: Manifest;
  manifestHash: string;
  /** Nothing was downloaded (all files came from IndexedDB). */
  fromCache: boolean;
  /** Names of the files downloaded by this call. */
  downloaded: string[];
  /** The manifest came from the cache because the network failed or `offline` was set. */
  offline: boolean;
  /** Result of `navigator.storage.persist()` (or `persisted()` when nothing was downloaded); null if unsupported. */
  persisted: boolean | null;
  /**
   * Gives up this context's hold on the model (the shared Web Lock taken by the load, see
   * `locks.ts`): until then no context can delete or prune it. Idempotent; the engine calls it
   * when the model is released or disposed. Settles once the lock is free.
   */
  release(): Promise<void>;
}

interface FetchCtx extends HttpCtx {
  /** The query string of the URL the caller gave, sent with every file (signed URLs). */
  query: string;
  storage: StorageLike | null;
  /** Bytes still to store (a QuotaError on a failed write reports them). */
  remainingBytes: number;
}

async function fetchManifest(ctx: FetchCtx, base: string): Promise<Uint8Array> {
  const url = fileUrl(base, 'manifest.json', ctx.query);
  return withRetries(ctx, url, async () => (await fetchOnce(ctx, url, null))!);
}

function parseManifest(bytes: Uint8Array, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new FormatError(`${where}: manifest.json is not JSON: ${(e as Error).message}`, { cause: e });
  }
  return validateManifest(json);
}

/** Downloads, verifies and stores one file; integrity mismatches refetch once (using a retry). */
async function downloadFile(ctx: FetchCtx, base: string, hash: string, file: ModelFile, progress: ProgressTracker): Promise<void> {
  const url = fileUrl(base, file.name, ctx.query);
  let mismatches = 0;
  await withRetries(ctx, url, async () => {
    const bytes = await fetchOnce(ctx, url, file.byteLength, (n, d) => progress.chunk(file.shardIndex, n, d, file.byteLength));
    progress.phase('verify', file.shardIndex);
    const got = bytes ? await sha256Hex(bytes) : null;
    throwIfAborted(ctx.signal);
    if (!bytes || got !== file.sha256) {
      const why = bytes ? `sha256 ${got}, expected ${file.sha256}` : `length differs from the manifest's ${file.byteLength} bytes`;
      if (++mismatches > 1) throw new IntegrityError(`${file.name} (${url}) failed verification twice: ${why}`);
      throw new Retryable(`${file.name} failed verification: ${why}`, undefined, null, true);
    }
    try {
      await putFile(hash, file, bytes);
    } catch (e) {
      throw await storageError(e, ctx.remainingBytes, ctx.storage);
    }
    ctx.remainingBytes -= file.byteLength;
    progress.commit(file.shardIndex, file.byteLength);
  });
}

/**
 * A failed IndexedDB write as a typed error: QuotaExceededError becomes QuotaError with the bytes
 * still to store and the free space the browser reports now (null when it gives no estimate).
 */
async function storageError(e: unknown, needed: number, storage: StorageLike | null): Promise<unknown> {
  const name = (e as { name?: string })?.name;
  if (name !== 'QuotaExceededError') return e;
  const estimate = await estimateStorage(storage);
  const available = 'est' in estimate ? freeBytes(estimate.est) : null;
  return new QuotaError(needed, available, `the browser refused a write (${(e as Error).message ?? name})`);
}

/**
 * Makes the model at `opts.url` available from IndexedDB, downloading what is missing, and
 * returns a handle to read it (`ModelFiles`, consumed by `uploadModel`).
 */
export async function loadModelFiles(opts: LoadModelOptions): Promise<LoadedModel> {
  const userSignal = opts.signal;
  throwIfAborted(userSignal);
  if (typeof opts.url !== 'string' || !opts.url) throw new FormatError(`the model URL is missing (got ${JSON.stringify(opts.url)}): pass { url: '<folder holding manifest.json>' }`);
  const base = normalizeBaseUrl(opts.url);
  const internal = new AbortController();
  const signal = userSignal ? AbortSignal.any([userSignal, internal.signal]) : internal.signal;
  const storage = opts.storage === undefined ? defaultStorage() : opts.storage;
  const ctx: FetchCtx = {
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    signal,
    policy: { ...DEFAULT_RETRY, ...opts.retry },
    stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    sleep: opts.sleep,
    query: new URL(opts.url, typeof location !== 'undefined' ? location.href : undefined).search,
    storage,
    remainingBytes: 0,
  };
  const onProgress = containProgress(opts.onProgress);
  onProgress?.({ phase: 'manifest', loadedBytes: 0, totalBytes: 0, shardIndex: -1, shardCount: 0, bytesPerSecond: 0 });

  // 1. Manifest: network first, the cache when the network fails or when told offline.
  let manifestBytes: Uint8Array | undefined;
  let netError: unknown = null;
  if (!opts.offline) {
    try {
      manifestBytes = await fetchManifest(ctx, base);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      netError = e;
    }
  }
  const offline = manifestBytes === undefined;
  let hash: string;
  if (manifestBytes === undefined) {
    const rec = await findCachedModel(base);
    if (!rec) {
      throw netError ?? new NetworkError(`offline: ${base} is not in the IndexedDB cache`);
    }
    manifestBytes = await getManifestBytes(rec.manifestHash);
    if (!manifestBytes) throw new IntegrityError(`the cached manifest of ${base} is missing; load the model online`);
    hash = await sha256Hex(manifestBytes);
    if (hash !== rec.manifestHash) throw new IntegrityError(`the cached manifest of ${base} is corrupted; load the model online`);
  } else {
    hash = await sha256Hex(manifestBytes);
  }
  const manifest = parseManifest(manifestBytes, base);
  throwIfAborted(userSignal);

  // 2. Hold the model (shared lock: no other context deletes it from now until release), and
  //    download what is missing, one context at a time (another one waits, then finds it cached).
  const hold = await holdModel(hash, userSignal);
  try {
    const mb = manifestBytes;
    const got = await whileDownloading(hash, userSignal, () =>
      ensureFiles(ctx, internal, { opts, base, hash, manifest, manifestBytes: mb, offline, netError, onProgress }),
    );
    if (!offline && (opts.pruneOldVersions ?? true)) {
      // An old version another context still holds is kept; a later load prunes it.
      for (const rec of await allRecords()) if (rec.url === base && rec.manifestHash !== hash) await ifUnused(rec.manifestHash, () => deleteModel(rec.manifestHash));
    }
    got.progress.phase('done');
    return {
      files: new ModelFiles(base, manifest, hash),
      manifest,
      manifestHash: hash,
      fromCache: got.missing.length === 0,
      downloaded: got.missing.map((f) => f.name),
      offline,
      persisted: got.persisted,
      release: hold.release,
    };
  } catch (e) {
    void hold.release();
    throw e;
  }
}

interface EnsureArgs {
  opts: LoadModelOptions;
  base: string;
  hash: string;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  offline: boolean;
  netError: unknown;
  onProgress: ProgressCallback | undefined;
}

/** Steps 2-4 of a load, under the download lock: what is cached, the quota, the download. */
async function ensureFiles(
  ctx: FetchCtx, internal: AbortController, a: EnsureArgs,
): Promise<{ missing: ModelFile[]; persisted: boolean | null; progress: ProgressTracker }> {
  const { opts, base, hash, manifest, manifestBytes, offline, netError } = a;
  const userSignal = opts.signal;
  const storage = ctx.storage;
  const files = manifestFiles(manifest);
  // Known = registered with its manifest stored (else the model database holds nothing useful).
  const known = (await getRecord(hash)) !== undefined && (await getManifestBytes(hash)) !== undefined;
  const present = known ? await presentFiles(hash, files, opts.verify) : new Set<string>();
  const missing = files.filter((f) => !present.has(f.key));
  const progress = new ProgressTracker({
    totalBytes: files.reduce((n, f) => n + f.byteLength, 0),
    shardCount: manifest.shards.length,
    onProgress: a.onProgress,
    intervalMs: opts.progressIntervalMs,
  });
  for (const f of files) if (present.has(f.key)) progress.cached(f.shardIndex, f.byteLength);

  let persisted: boolean | null = null;
  if (missing.length) {
    if (offline) {
      const what = `${missing.length} of ${files.length} files of ${base} are not cached (${missing.map((f) => f.name).join(', ')})`;
      throw netError instanceof NetworkError ? new NetworkError(`${what}: ${netError.message}`, netError.status, { cause: netError }) : new NetworkError(`offline: ${what}`);
    }
    // 3. Quota, before any write.
    const toStore = missing.reduce((n, f) => n + f.byteLength, 0) + (known ? 0 : manifestBytes.byteLength);
    const estimate = await estimateStorage(storage);
    if ('est' in estimate) {
      const q = checkQuota(toStore, estimate.est);
      if (!q.ok) throw new QuotaError(q.neededBytes, q.availableBytes);
    } else {
      // No estimate is no reason to refuse: say so and go on; a write that then runs out of
      // room fails with QuotaError (storageError) and what was stored stays stored.
      progress.phase('download', -1, `${estimate.unavailable}: downloading ${formatBytes(toStore)} without a storage quota check`);
    }
    throwIfAborted(userSignal);
    persisted = storage?.persist ? await storage.persist().catch(() => false) : null;

    // 4. Download.
    try {
      if (!known) {
        await putRecord({ url: base, name: manifest.name, manifestHash: hash, totalBytes: progress.totalBytes, storedAt: Date.now() });
        await putManifestBytes(hash, manifestBytes);
      }
    } catch (e) {
      throw await storageError(e, toStore, storage);
    }
    ctx.remainingBytes = toStore - (known ? 0 : manifestBytes.byteLength);
    await downloadAll(ctx, internal, userSignal, base, hash, missing, progress, opts.concurrency ?? 3);
  } else if (storage?.persisted) {
    persisted = await storage.persisted().catch(() => null);
  }
  return { missing, persisted, progress };
}

/** A pool of `concurrency` workers; the first failure stops the others (and is thrown). */
async function downloadAll(
  ctx: FetchCtx, internal: AbortController, userSignal: AbortSignal | undefined, base: string, hash: string,
  files: ModelFile[], progress: ProgressTracker, concurrency: number,
): Promise<void> {
  const queue = [...files];
  let failure: { e: unknown } | null = null;
  const worker = async () => {
    while (queue.length && !failure) {
      const f = queue.shift()!;
      try {
        await downloadFile(ctx, base, hash, f, progress);
      } catch (e) {
        if (!failure) {
          failure = { e };
          internal.abort(); // stop the other workers' requests now
        }
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, files.length)) }, worker));
  if (userSignal?.aborted) throw abortErrorFrom(userSignal);
  if (failure) throw (failure as { e: unknown }).e;
}
