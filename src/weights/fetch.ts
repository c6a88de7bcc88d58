/**
 * Downloads a converted model (manifest.json + shards + tokenizer file) from a base URL on any
 * static host (a Hugging Face `resolve/main/` URL too) into the IndexedDB cache (`store.ts`).
 *
 * - The manifest is fetched and validated first; its SHA-256 names the model in the cache.
 *   When the network fails, or with `offline: true`, the newest cached version for the URL is
 *   used, with no request at all.
 * - Only files missing from the cache are fetched (resume after an abort or a closed tab), with
 *   bounded concurrency, each response body read as a stream so progress moves within a shard.
 * - Network errors, 5xx, 408 and 429 are retried with exponential backoff (`retry.ts`); 404
 *   and other 4xx fail at once with NetworkError.
 * - Every file's length and SHA-256 are checked before it is stored; a mismatch refetches once
 *   (counted as a retry), a second mismatch throws IntegrityError naming the file, which is
 *   not stored.
 * - Before any write, `storage.estimate()` must leave room for the missing bytes plus a margin
 *   (`quota.ts`), else QuotaError and nothing is written. `storage.persist()` is requested.
 * - The AbortSignal is honoured everywhere: an abort rejects promptly with AbortError and no
 *   further request is made. Files already stored stay stored.
 */
import { AbortError, IntegrityError, NetworkError, PixtralError, QuotaError, throwIfAborted, FormatError } from '../errors.js';
import { validateManifest, type Manifest } from './manifest.js';
import { sha256Hex } from './hash.js';
import { ProgressTracker, type ProgressCallback } from './progress.js';
import { backoffDelay, DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, sleep, type RetryPolicy } from './retry.js';
import { checkQuota, defaultStorage, type StorageLike } from './quota.js';
import {
  allRecords, deleteCachedModel, findCachedModel, getManifestBytes, getRecord, manifestFiles, ModelFiles, normalizeBaseUrl, presentFiles, putFile,
  putManifestBytes, putRecord, type ModelFile,
} from './store.js';

export interface LoadModelOptions {
  /** Base URL of the model folder (or of its manifest.json). */
  url: string;
  /** Use the cache only; never touch the network. */
  offline?: boolean;
  signal?: AbortSignal;
  /** Progress events; an exception thrown here fails the load. */
  onProgress?: ProgressCallback;
  /** Minimum interval between two per-chunk progress events, ms (0: every chunk). Default 50. */
  progressIntervalMs?: number;
  /** Files downloaded at the same time. Default 3. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** Replaces `globalThis.fetch` (tests, custom auth headers, a service-worker bypass...). */
  fetch?: typeof fetch;
  /** Replaces `navigator.storage` (quota estimate, persist). */
  storage?: StorageLike | null;
  /** Re-hash every cached file at load time instead of trusting the hash stored with it. */
  reverify?: boolean;
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
}

/** Is this a failure of the transport (worth a retry), as opposed to a bug or an abort? */
class Retryable extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs: number | null = null,
    /** The bytes arrived but failed verification: out of retries, this is an IntegrityError. */
    readonly integrity = false,
  ) {
    super(message);
  }
}

function abortErrorFrom(signal: AbortSignal | undefined): PixtralError {
  try {
    throwIfAborted(signal);
  } catch (e) {
    return e as PixtralError;
  }
  return new AbortError();
}

interface FetchCtx {
  fetch: typeof fetch;
  signal: AbortSignal;
  policy: RetryPolicy;
}

/** One GET; non-OK statuses become Retryable or NetworkError; aborts become AbortError. */
async function request(ctx: FetchCtx, url: string): Promise<Response> {
  throwIfAborted(ctx.signal);
  let res: Response;
  try {
    // no-store: the bytes go to IndexedDB; a second copy in the HTTP cache would only cost quota.
    res = await ctx.fetch(url, { signal: ctx.signal, cache: 'no-store' });
  } catch (e) {
    if (ctx.signal.aborted) throw abortErrorFrom(ctx.signal);
    throw new Retryable(`${url}: ${(e as Error).message ?? e}`);
  }
  if (res.ok) return res;
  res.body?.cancel().catch(() => {});
  const msg = `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (isRetryableStatus(res.status)) throw new Retryable(msg, res.status, parseRetryAfter(res.headers.get('retry-after')));
  throw new NetworkError(msg, res.status);
}

/**
 * Reads a body into a buffer of the expected length, reporting each chunk. Returns null when
 * the body is longer or shorter than expected (an integrity failure, not a transport one).
 */
async function readBody(
  ctx: FetchCtx, res: Response, url: string, expected: number, onChunk: (attemptBytes: number, delta: number) => void,
): Promise<Uint8Array | null> {
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    onChunk(b.byteLength, b.byteLength);
    return b.byteLength === expected ? b : null;
  }
  const out = new Uint8Array(expected);
  let n = 0;
  const reader = res.body.getReader();
  // A custom fetch may hand back a stream that ignores the signal: cancel it ourselves.
  const onAbort = () => void reader.cancel().catch(() => {});
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        if (ctx.signal.aborted) throw abortErrorFrom(ctx.signal);
        throw new Retryable(`${url}: body interrupted after ${n} bytes: ${(e as Error).message ?? e}`);
      }
      if (ctx.signal.aborted) throw abortErrorFrom(ctx.signal);
      if (r.done) break;
      const chunk = r.value;
      if (n + chunk.byteLength > expected) {
        await reader.cancel().catch(() => {});
        return null;
      }
      out.set(chunk, n);
      n += chunk.byteLength;
      onChunk(n, chunk.byteLength);
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
  return n === expected ? out : null;
}

/** Runs `fn` with retries and backoff; Retryable errors are retried, others thrown. */
async function withRetries<T>(ctx: FetchCtx, what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(ctx.signal);
    try {
      return await fn(attempt);
    } catch (e) {
      if (ctx.signal.aborted) throw abortErrorFrom(ctx.signal);
      if (!(e instanceof Retryable)) throw e;
      if (attempt >= ctx.policy.retries) {
        if (e.integrity) throw new IntegrityError(`${what}: ${e.message}`);
        throw new NetworkError(`${what}: failed after ${attempt + 1} attempts: ${e.message}`, e.status, { cause: e });
      }
      await sleep(backoffDelay(attempt, ctx.policy, Math.random, e.retryAfterMs), ctx.signal);
    }
  }
}

async function fetchManifest(ctx: FetchCtx, base: string): Promise<Uint8Array> {
  const url = new URL('manifest.json', base).href;
  return withRetries(ctx, url, async () => {
    const res = await request(ctx, url);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      if (ctx.signal.aborted) throw abortErrorFrom(ctx.signal);
      throw new Retryable(`${url}: ${(e as Error).message}`);
    }
  });
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
  const url = new URL(file.name, base).href;
  let mismatches = 0;
  await withRetries(ctx, url, async () => {
    const res = await request(ctx, url);
    const bytes = await readBody(ctx, res, url, file.byteLength, (n, d) => progress.chunk(file.shardIndex, n, d, file.byteLength));
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
      throw storageError(e, file.byteLength);
    }
    progress.commit(file.shardIndex, file.byteLength);
  });
}

function storageError(e: unknown, needed: number): unknown {
  const name = (e as { name?: string })?.name;
  if (name === 'QuotaExceededError') return new QuotaError(needed, 0);
  return e;
}

/**
 * Makes the model at `opts.url` available from IndexedDB, downloading what is missing, and
 * returns a handle to read it (`ModelFiles`, consumed by `uploadModel`).
 */
export async function loadModelFiles(opts: LoadModelOptions): Promise<LoadedModel> {
  const userSignal = opts.signal;
  throwIfAborted(userSignal);
  const base = normalizeBaseUrl(opts.url);
  const internal = new AbortController();
  const signal = userSignal ? AbortSignal.any([userSignal, internal.signal]) : internal.signal;
  const ctx: FetchCtx = {
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    signal,
    policy: { ...DEFAULT_RETRY, ...opts.retry },
  };
  const storage = opts.storage === undefined ? defaultStorage() : opts.storage;
  opts.onProgress?.({ phase: 'manifest', loadedBytes: 0, totalBytes: 0, shardIndex: -1, shardCount: 0, bytesPerSecond: 0 });

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

  // 2. What is cached already.
  const files = manifestFiles(manifest);
  // Known = registered with its manifest stored (else the model database holds nothing useful).
  const known = (await getRecord(hash)) !== undefined && (await getManifestBytes(hash)) !== undefined;
  const present = known ? await presentFiles(hash, files, opts.reverify) : new Set<string>();
  const missing = files.filter((f) => !present.has(f.key));
  const progress = new ProgressTracker({
    totalBytes: files.reduce((a, f) => a + f.byteLength, 0),
    shardCount: manifest.shards.length,
    onProgress: opts.onProgress,
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
    const toStore = missing.reduce((a, f) => a + f.byteLength, 0) + (known ? 0 : manifestBytes.byteLength);
    const est = storage ? await storage.estimate().catch(() => null) : null;
    const q = checkQuota(toStore, est);
    if (!q.ok) throw new QuotaError(q.neededBytes, q.availableBytes);
    throwIfAborted(userSignal);
    persisted = storage?.persist ? await storage.persist().catch(() => false) : null;

    // 4. Download.
    try {
      if (!known) {
        await putRecord({ url: base, name: manifest.name, manifestHash: hash, totalBytes: progress.totalBytes, storedAt: Date.now() });
        await putManifestBytes(hash, manifestBytes);
      }
    } catch (e) {
      throw storageError(e, toStore);
    }
    await downloadAll(ctx, internal, userSignal, base, hash, missing, progress, opts.concurrency ?? 3);
  } else if (storage?.persisted) {
    persisted = await storage.persisted().catch(() => null);
  }
  if (!offline && (opts.pruneOldVersions ?? true)) {
    for (const rec of await allRecords()) if (rec.url === base && rec.manifestHash !== hash) await deleteCachedModel(rec.manifestHash);
  }
  progress.phase('done');
  return {
    files: new ModelFiles(base, manifest, hash),
    manifest,
    manifestHash: hash,
    fromCache: missing.length === 0,
    downloaded: missing.map((f) => f.name),
    offline,
    persisted,
  };
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
