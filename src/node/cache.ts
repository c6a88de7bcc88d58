/**
 * The disk cache of remote models in Node, the counterpart of the browser's IndexedDB store:
 * `openRemoteModel({ url })` downloads a converted model from an http(s) base URL once into
 * `<cache>/models/<manifest sha256>/` (a plain model folder, then read in place by
 * `DiskModelSource`), with the same rules as the browser's downloader (`src/weights/fetch.ts`):
 *
 * - the manifest is fetched first; its SHA-256 names the version. With `offline`, or when the
 *   network fails, the newest complete cached version of the URL is used without any request;
 * - only missing files are fetched, 3 at a time; a file interrupted mid-way resumes from its
 *   `.part` with an HTTP Range request (a server that ignores Range restarts it);
 * - network errors, 5xx, 408 and 429 are retried with backoff (`retry.ts`), other 4xx fail at
 *   once with NetworkError; each file's length and SHA-256 are checked before it is renamed
 *   into place, a mismatch refetches once, a second one is an IntegrityError naming the file;
 * - an attempt that receives nothing for `stallTimeoutMs` (default 30 s) is retried;
 * - free disk space must cover the missing bytes plus a margin, else QuotaError before writing;
 * - progress events are the browser's (`ProgressTracker`: monotonic bytes, rate); the signal
 *   aborts promptly with AbortError, and completed files stay for the next call.
 *
 * GGUF pairs loaded by URL go into the same cache, one folder per version (`gguf-cache.ts`).
 *
 * Cache root: `cacheDir` option, else `$PIXTRAL_WEBGPU_CACHE`, else
 * `$XDG_CACHE_HOME/pixtral-webgpu`, else `~/.cache/pixtral-webgpu`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InUseError, IntegrityError, NetworkError, QuotaError, throwIfAborted } from '../errors.js';
import { ProgressTracker } from '../weights/progress.js';
import { quotaMargin } from '../weights/quota.js';
import { DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, type RetryPolicy } from '../weights/retry.js';
import { abortErrorFrom, DEFAULT_STALL_TIMEOUT_MS, fetchOnce, Retryable, withRetries, type HttpCtx } from '../weights/http.js';
import { manifestFiles, normalizeBaseUrl, normalizeFileUrl, type ModelFile } from '../weights/store.js';
import type { OpenedModel, OpenModelOptions } from '../weights/source.js';
import { DiskModelSource, parseManifestBytes } from './files.js';
import { sha256Hex } from '../weights/hash.js';
import { diskLocks } from './locks.js';

export const CACHE_ENV = 'PIXTRAL_WEBGPU_CACHE';


/** The cache root used when no `cacheDir` is given. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env[CACHE_ENV]) return env[CACHE_ENV]!;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pixtral-webgpu');
}

export interface RemoteModelOptions extends OpenModelOptions {
  cacheDir?: string;
  /** Files downloaded at the same time. Default 3. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** Minimum interval between two per-chunk progress events, ms. Default 50. */
  progressIntervalMs?: number;
}

/** What `source.json` in a cached version's folder records. */
interface CacheRecord {
  /** The model's base URL; a GGUF pair's text file URL. */
  url: string;
  name: string;
  storedAt: number;
  complete: boolean;
  /** `gguf`: a llama.cpp GGUF pair (`gguf-cache.ts`); absent for a converted model. */
  kind?: 'gguf';
  /** A GGUF pair's mmproj URL. */
  mmproj?: string;
  /** A GGUF pair's text file: bytes and tensors per ggml type. */
  quantMix?: Record<string, { tensors: number; bytes: number }>;
}

export interface CachedModelEntry extends CacheRecord {
  manifestHash: string;
  dir: string;
}

/** Every cached version, newest first. */
export async function listDiskCache(cacheDir = defaultCacheDir()): Promise<CachedModelEntry[]> {
  const root = join(cacheDir, 'models');
  const out: CachedModelEntry[] = [];
  for (const hash of await readdir(root).catch(() => [] as string[])) {
    try {
      const rec = JSON.parse(await readFile(join(root, hash, 'source.json'), 'utf8')) as CacheRecord;
      out.push({ ...rec, manifestHash: hash, dir: join(root, hash) });
    } catch {
      /* a version being created or damaged: not listed */
    }
  }
  return out.sort((a, b) => b.storedAt - a.storedAt);
}

/**
 * Removes every cached version of `url` (a model's base URL, or a GGUF pair's text file URL);
 * returns their folders. A version that a live process holds (this one included: a loaded
 * model) is kept, and then InUseError says which, after the others are removed.
 */
export async function deleteDiskCached(url: string, cacheDir = defaultCacheDir()): Promise<string[]> {
  const base = normalizeBaseUrl(url);
  const file = normalizeFileUrl(url);
  const locks = diskLocks(cacheDir);
  const gone: string[] = [];
  const busy: string[] = [];
  for (const e of (await listDiskCache(cacheDir)).filter((e) => (e.kind === 'gguf' ? e.url === file : e.url === base))) {
    if (await locks.inUse(e.manifestHash)) {
      busy.push(e.manifestHash);
      continue;
    }
    await rm(e.dir, { recursive: true, force: true });
    gone.push(e.dir);
  }
  if (busy.length) throw InUseError.kept(url, busy, gone.length, 'a process on this machine');
  return gone;
}

/** The downloader's HTTP context (`src/weights/http.ts`) plus the user's own signal. */
interface Ctx extends HttpCtx {
  userSignal?: AbortSignal;
}

function aborted(ctx: Ctx): Error {
  return abortErrorFrom(ctx.userSignal ?? ctx.signal);
}

/** One read of a body, or a Retryable when nothing arrives within the stall timeout. */
async function readWithin(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number, url: string, n: number) {
  if (!Number.isFinite(ms) || ms <= 0) return reader.read();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Reject first: cancelling settles the pending read as "done", which would win the race
      // and look like a short body (a length mismatch that discards the partial file).
      reject(new Retryable(`${url}: no bytes for ${ms / 1000} s, stalled after ${n} bytes`));
      reader.cancel().catch(() => {});
    }, ms);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** A GET, ranged when resuming; non-OK statuses become Retryable or NetworkError. */
async function request(ctx: Ctx, url: string, headers: Record<string, string>): Promise<Response> {
  throwIfAborted(ctx.signal);
  let res: Response;
  try {
    res = await ctx.fetch(url, { signal: ctx.signal, headers });
  } catch (e) {
    if (ctx.signal.aborted) throw aborted(ctx);
    throw new Retryable(`${url}: ${(e as Error).message ?? e}`);
  }
  if (res.ok) return res;
  res.body?.cancel().catch(() => {});
  const msg = `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (isRetryableStatus(res.status)) throw new Retryable(msg, res.status, parseRetryAfter(res.headers.get('retry-after')));
  throw new NetworkError(msg, res.status);
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.size ?? -1;
}

/** SHA-256 of the first bytes of a file (to continue hashing a resumed `.part`). */
async function hashFile(path: string): Promise<ReturnType<typeof createHash>> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h;
}

/** Downloads one file into `<dir>/<name>.part` (resuming it), verifies it, renames it into place. */
async function downloadFile(ctx: Ctx, base: string, dir: string, f: ModelFile, progress: ProgressTracker): Promise<void> {
  const url = new URL(f.name, base).href;
  const part = join(dir, `${f.name}.part`);
  let mismatches = 0;
  await withRetries(ctx, url, async () => {
    let have = Math.max(0, await sizeOf(part));
    if (have > f.byteLength) {
      await rm(part, { force: true });
      have = 0;
    }
    const res = await request(ctx, url, have > 0 ? { range: `bytes=${have}-` } : {});
    if (have > 0 && res.status !== 206) have = 0; // the server sent the whole file
    const hash = have > 0 ? await hashFile(part) : createHash('sha256');
    const fh = await open(part, have > 0 ? 'a' : 'w');
    let n = have;
    try {
      if (n) progress.chunk(f.shardIndex, n, 0, f.byteLength);
      const reader = res.body!.getReader();
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await readWithin(reader, ctx.stallTimeoutMs, url, n);
        } catch (e) {
          if (ctx.signal.aborted) throw aborted(ctx);
          if (e instanceof Retryable) throw e;
          throw new Retryable(`${url}: body interrupted after ${n} bytes: ${(e as Error).message ?? e}`);
        }
        if (r.done) break;
        if (n + r.value.byteLength > f.byteLength) {
          await reader.cancel().catch(() => {});
          n = f.byteLength + 1;
          break;
        }
        await fh.write(r.value);
        hash.update(r.value);
        n += r.value.byteLength;
        progress.chunk(f.shardIndex, n, r.value.byteLength, f.byteLength);
      }
    } finally {
      await fh.close();
    }
    progress.phase('verify', f.shardIndex);
    const got = n === f.byteLength ? hash.digest('hex') : null;
    if (got !== f.sha256) {
      await rm(part, { force: true });
      const why = got ? `sha256 ${got}, expected ${f.sha256}` : `length differs from the manifest's ${f.byteLength} bytes`;
      if (++mismatches > 1) throw new IntegrityError(`${f.name} (${url}) failed verification twice: ${why}`);
      throw new Retryable(`${f.name} failed verification: ${why}`, undefined, null, true);
    }
    await rename(part, join(dir, f.name));
    progress.commit(f.shardIndex, f.byteLength);
  });
}

async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/**
 * Makes the model at an http(s) `url` available in the disk cache and opens it in place (the
 * `ModelOpener` the Node entry uses for URLs).
 */
export async function openRemoteModel(opts: RemoteModelOptions): Promise<OpenedModel> {
  throwIfAborted(opts.signal);
  const base = normalizeBaseUrl(opts.url);
  const root = join(opts.cacheDir ?? defaultCacheDir(), 'models');
  const internal = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, internal.signal]) : internal.signal;
  const ctx: Ctx = {
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis), signal, userSignal: opts.signal, policy: { ...DEFAULT_RETRY, ...opts.retry },
    stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
  };
  // Files were hashed once at download; `verify` re-hashes them as they are read.
  const verify = opts.verify ?? false;
  opts.onProgress?.({ phase: 'manifest', loadedBytes: 0, totalBytes: 0, shardIndex: -1, shardCount: 0, bytesPerSecond: 0 });

  let manifestBytes: Uint8Array | null = null;
  let netError: unknown = null;
  if (!opts.offline) {
    const murl = new URL('manifest.json', base).href;
    try {
      manifestBytes = await withRetries(ctx, murl, async () => (await fetchOnce(ctx, murl, null))!);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      netError = e;
    }
  }
  // Processes sharing the cache: each holds the version it opens (a delete elsewhere is refused)
  // and one downloads it while the others wait (locks.ts).
  const locks = diskLocks(opts.cacheDir ?? defaultCacheDir());
  if (!manifestBytes) {
    const cached = (await listDiskCache(opts.cacheDir)).find((e) => e.url === base && e.complete);
    if (!cached) throw netError ?? new NetworkError(`offline: ${base} is not in the disk cache (${root})`);
    const bytes = await readFile(join(cached.dir, 'manifest.json'));
    if ((await sha256Hex(bytes)) !== cached.manifestHash) throw new IntegrityError(`the cached manifest of ${base} (${cached.dir}) is corrupted; load the model online`);
    const manifest = parseManifestBytes(bytes, base);
    const hold = await locks.hold(cached.manifestHash, opts.signal);
    return { files: new DiskModelSource(cached.dir, manifest, base, verify), manifest, fromCache: true, release: () => hold.release() };
  }

  const hash = await sha256Hex(manifestBytes);
  const manifest = parseManifestBytes(manifestBytes, base);
  const dir = join(root, hash);
  const files = manifestFiles(manifest);
  const progress = new ProgressTracker({
    totalBytes: files.reduce((a, f) => a + f.byteLength, 0),
    shardCount: manifest.shards.length,
    onProgress: opts.onProgress,
    intervalMs: opts.progressIntervalMs,
  });
  const record = (complete: boolean): Promise<void> =>
    writeFile(join(dir, 'source.json'), `${JSON.stringify({ url: base, name: manifest.name, storedAt: Date.now(), complete } satisfies CacheRecord)}\n`);
  const hold = await locks.hold(hash, opts.signal);
  try {
    const fromCache = await locks.whileDownloading(hash, opts.signal, async () => {
      await mkdir(dir, { recursive: true });
      const missing: ModelFile[] = [];
      for (const f of files) {
        // A file in place passed its hash when it was renamed there (hash once, like the browser cache).
        if ((await sizeOf(join(dir, f.name))) === f.byteLength) progress.cached(f.shardIndex, f.byteLength);
        else missing.push(f);
      }
      if (missing.length) {
        let partial = 0;
        for (const f of missing) partial += Math.max(0, await sizeOf(join(dir, `${f.name}.part`)));
        const needed = missing.reduce((a, f) => a + f.byteLength, 0) - partial;
        const free = await freeBytes(dir);
        if (free !== null && free < needed + quotaMargin(needed)) throw new QuotaError(needed + quotaMargin(needed), free);
        await writeFile(join(dir, 'manifest.json'), manifestBytes);
        await record(false);
        const queue = [...missing];
        let failure: { e: unknown } | null = null;
        const worker = async (): Promise<void> => {
          while (queue.length && !failure) {
            const f = queue.shift()!;
            try {
              await downloadFile(ctx, base, dir, f, progress);
            } catch (e) {
              failure ??= { e };
              internal.abort(); // stop the other downloads now
            }
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 3, missing.length)) }, worker));
        if (opts.signal?.aborted) throw aborted(ctx);
        if (failure) throw (failure as { e: unknown }).e;
      }
      const prev = await readFile(join(dir, 'source.json'), 'utf8').then((t) => JSON.parse(t) as CacheRecord, () => null);
      if (!prev?.complete) {
        await writeFile(join(dir, 'manifest.json'), manifestBytes);
        await record(true);
      }
      return missing.length === 0;
    });
    // A model re-converted on the server has a new manifest hash: drop the older versions nobody holds.
    for (const e of await listDiskCache(opts.cacheDir)) {
      if (e.url === base && e.manifestHash !== hash && !(await locks.inUse(e.manifestHash))) await rm(e.dir, { recursive: true, force: true });
    }
    progress.phase('done');
    return { files: new DiskModelSource(dir, manifest, base, verify), manifest, fromCache, release: () => hold.release() };
  } catch (e) {
    void hold.release();
    throw e;
  }
}
