/**
 * A GGUF pair (text + mmproj URLs) through the model cache: the browser's IndexedDB store and
 * Node's disk cache implement `GgufCacheBackend`; this module is the logic both share.
 *
 * Versions: a cached pair is named by the SHA-256 of what identifies its bytes: both URLs
 * (without query), their sizes and the validators the server sent (`X-Linked-Etag`/`ETag`), and
 * the chunk size. A file changed on the server is a new version; older versions of the same URLs
 * are dropped once a new one is complete (when no context holds them).
 *
 * `openGgufPair`:
 * 1. Online: one tiny Range request per file (`probeGguf`: size, stated SHA-256). A complete
 *    cached version with that identity is used as it is: its headers and tensors are read from
 *    the store, no weight byte is fetched. Offline (`offline: true`, or the probe failed with a
 *    NetworkError), the newest complete version of the pair is used without any request.
 * 2. Otherwise both headers are read over the network and `check`ed (model type, tokenizer,
 *    every tensor's type) before any weight byte; the bytes still missing (all, or what an
 *    aborted or failed download left) must fit the store (`checkRoom`: QuotaError before any
 *    write), then both files are downloaded chunk by chunk (`downloadGgufFile`: resume, per-chunk
 *    and whole-file SHA-256, progress with rate and ETA, abort).
 * 3. The returned sources read the stored chunks, each checked against its recorded hash; a
 *    damaged chunk is fetched again when online, refused with IntegrityError offline.
 */
import { FormatError, NetworkError, throwIfAborted } from '../errors.js';
import { sha256Hex } from '../weights/hash.js';
import { normalizeFileUrl } from '../weights/store.js';
import { DEFAULT_STALL_TIMEOUT_MS, type HttpCtx } from '../weights/http.js';
import type { LockHandle } from '../weights/locks.js';
import { containProgress, ProgressTracker, type ProgressCallback } from '../weights/progress.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../weights/retry.js';
import { cachedSource, chunkCount, DEFAULT_CHUNK_BYTES, type ChunkStore, type GgufRole } from './chunks.js';
import { downloadGgufFile, fetchChunk, probeGguf, type GgufProbe } from './download.js';
import { summarizeGguf, type GgufSummary } from './index.js';
import { readGgufHeader, type GgufHeader } from './reader.js';
import { urlSource, type ByteSource } from './source.js';

const ROLES: readonly GgufRole[] = ['text', 'mmproj'];

/** One file of a cached pair, as its manifest records it. */
export interface GgufFileEntry {
  /** Absolute URL without query or fragment. */
  url: string;
  byteLength: number;
  /** The whole file's SHA-256 as the server stated it; null when it stated none. */
  sha256: string | null;
  etag: string | null;
}

/** What a cached pair's manifest holds (the `manifest` entry of its version). */
export interface GgufPairManifest {
  format: 'gguf-pair';
  chunkBytes: number;
  files: Record<GgufRole, GgufFileEntry>;
  /** `general.name` of the text file, else its URL. */
  name: string;
  /** The text file's quant mix (per ggml type: tensors and bytes), for listings. */
  quantMix: GgufSummary['quantMix'];
}

export interface GgufCacheVersion {
  key: string;
  manifest: GgufPairManifest;
  complete: boolean;
  storedAt: number;
}

/** The store's side of the cache (IndexedDB in the browser, a folder in Node). */
export interface GgufCacheBackend {
  /** Where the cache is, for messages. */
  readonly where: string;
  /** Stored versions of the pair, newest first. */
  versions(url: string, mmproj: string): Promise<GgufCacheVersion[]>;
  /** Registers a version (idempotent); its chunks are then written through `chunks`. */
  create(key: string, manifest: GgufPairManifest): Promise<void>;
  chunks(key: string, role: GgufRole): ChunkStore;
  markComplete(key: string): Promise<void>;
  /** Throws QuotaError when `bytes` more do not fit; a warning when the room is unknown. */
  checkRoom(key: string, bytes: number): Promise<string | undefined>;
  /** Holds the version against deletion by other contexts until released. */
  hold(key: string, signal?: AbortSignal): Promise<LockHandle>;
  /** Runs `fn` as the only context downloading this version. */
  whileDownloading<T>(key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T>;
  /** Drops the pair's other versions that nobody holds. */
  pruneOthers(url: string, mmproj: string, keep: string): Promise<void>;
}

export interface OpenGgufPairOptions {
  url: string;
  mmproj: string;
  offline?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  fetch?: typeof fetch;
  stallTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Chunk size of a new download (a resumed one keeps its own). Default 32 MiB. */
  chunkBytes?: number;
  /** Chunk requests at the same time, per file. Default 3. */
  concurrency?: number;
  progressIntervalMs?: number;
  /**
   * Runs on both headers (read from the network) before any weight byte of a pair that is not
   * cached yet is fetched: the loader's model checks. A cached pair's headers are returned for
   * the caller to check.
   */
  check?: (text: GgufHeader, mmproj: GgufHeader) => void;
}

export interface OpenedGgufPair {
  headers: Record<GgufRole, GgufHeader>;
  sources: Record<GgufRole, ByteSource>;
  /** Nothing was downloaded. */
  fromCache: boolean;
  /** The version used (its cache key). */
  key: string;
  manifest: GgufPairManifest;
  /** Lets other contexts delete the version again. */
  release(): Promise<void>;
}

function sameFile(a: GgufFileEntry, p: GgufProbe, url: string): boolean {
  return a.url === url && a.byteLength === p.size && a.etag === p.etag && a.sha256 === p.sha256;
}

async function versionKey(m: Pick<GgufPairManifest, 'format' | 'chunkBytes' | 'files'>): Promise<string> {
  return sha256Hex(new TextEncoder().encode(JSON.stringify({ format: m.format, chunkBytes: m.chunkBytes, files: m.files })));
}

/** Makes a GGUF pair available from the cache, downloading what is missing (module comment). */
export async function openGgufPair(backend: GgufCacheBackend, opts: OpenGgufPairOptions): Promise<OpenedGgufPair> {
  throwIfAborted(opts.signal);
  const url = { text: normalizeFileUrl(opts.url), mmproj: normalizeFileUrl(opts.mmproj) };
  const requestUrl = { text: new URL(opts.url, typeof location !== 'undefined' ? location.href : undefined).href, mmproj: new URL(opts.mmproj, typeof location !== 'undefined' ? location.href : undefined).href };
  const internal = new AbortController();
  const ctx: HttpCtx = {
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    signal: opts.signal ? AbortSignal.any([opts.signal, internal.signal]) : internal.signal,
    policy: { ...DEFAULT_RETRY, ...opts.retry },
    stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    sleep: opts.sleep,
  };
  const onProgress = containProgress(opts.onProgress);
  onProgress?.({ phase: 'manifest', loadedBytes: 0, totalBytes: 0, shardIndex: -1, shardCount: 0, bytesPerSecond: 0 });
  const versions = await backend.versions(url.text, url.mmproj);

  let probes: Record<GgufRole, GgufProbe> | null = null;
  let netError: unknown = null;
  if (!opts.offline) {
    try {
      const [text, mmproj] = await Promise.all([probeGguf(ctx, requestUrl.text), probeGguf(ctx, requestUrl.mmproj)]);
      probes = { text, mmproj };
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      netError = e;
    }
  }
  if (!probes) {
    const v = await firstUsable(backend, versions);
    if (!v) {
      const what = `${url.text} + ${url.mmproj} ${versions.length ? 'are only partly' : 'are not'} in ${backend.where}`;
      throw netError instanceof NetworkError ? new NetworkError(`${what}: ${netError.message}`, netError.status, { cause: netError }) : new NetworkError(`offline: ${what}`);
    }
    return openStored(backend, v, opts, null, true);
  }

  const p = probes;
  const same = versions.find((v) => ROLES.every((r) => sameFile(v.manifest.files[r], p[r], url[r])));
  if (same && (await firstUsable(backend, [same]))) return openStored(backend, same, opts, { ctx, requestUrl }, true);

  // Not (completely) cached: both headers from the network and checked before any weight byte.
  const headers = {
    text: await readGgufHeader(urlSource(requestUrl.text, { fetch: ctx.fetch }), { signal: opts.signal }),
    mmproj: await readGgufHeader(urlSource(requestUrl.mmproj, { fetch: ctx.fetch }), { signal: opts.signal }),
  };
  opts.check?.(headers.text, headers.mmproj);
  const summary = summarizeGguf(headers.text);
  const chunkBytes = same?.manifest.chunkBytes ?? opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new FormatError(`chunkBytes must be a positive integer (got ${chunkBytes})`);
  const entry = (r: GgufRole): GgufFileEntry => ({ url: url[r], byteLength: p[r].size, sha256: p[r].sha256, etag: p[r].etag });
  const manifest: GgufPairManifest = same?.manifest ?? {
    format: 'gguf-pair', chunkBytes, files: { text: entry('text'), mmproj: entry('mmproj') },
    name: summary.name ?? url.text, quantMix: summary.quantMix,
  };
  const key = same?.key ?? (await versionKey(manifest));
  const hold = await backend.hold(key, opts.signal);
  try {
    const firstKey = { text: 0, mmproj: chunkCount({ size: manifest.files.text.byteLength, chunkBytes }) };
    const progress = new ProgressTracker({
      totalBytes: manifest.files.text.byteLength + manifest.files.mmproj.byteLength,
      shardCount: firstKey.mmproj + chunkCount({ size: manifest.files.mmproj.byteLength, chunkBytes }),
      onProgress,
      intervalMs: opts.progressIntervalMs,
    });
    const downloaded = await backend.whileDownloading(key, opts.signal, async () => {
      // The quota before any write: the bytes of every chunk not stored yet (read here, inside the
      // lock: another context may have stored them all while this one waited).
      let missing = 0;
      for (const r of ROLES) {
        const rec = await backend.chunks(key, r).recorded();
        const g = { size: manifest.files[r].byteLength, chunkBytes };
        for (let i = 0; i < chunkCount(g); i++) if (!rec.has(i)) missing += Math.min(g.size, (i + 1) * chunkBytes) - i * chunkBytes;
      }
      const warning = await backend.checkRoom(key, missing);
      if (warning) progress.phase('download', -1, warning);
      await backend.create(key, manifest);
      for (const r of ROLES) {
        if (manifest.files[r].sha256 === null) {
          progress.phase('download', -1, `${manifest.files[r].url}: the server states no SHA-256 for it (no 64-hex X-Linked-Etag/ETag): each chunk is hashed and checked when reused, the whole file is not checked`, { noFileHash: manifest.files[r].url });
        }
      }
      await Promise.all(ROLES.map((r) =>
        downloadGgufFile(ctx, {
          url: url[r], requestUrl: requestUrl[r], geometry: { size: manifest.files[r].byteLength, chunkBytes }, store: backend.chunks(key, r),
          sha256: manifest.files[r].sha256, firstKey: firstKey[r], concurrency: opts.concurrency ?? 3, userSignal: opts.signal, stop: () => internal.abort(),
        }, progress),
      ));
      await backend.markComplete(key);
      return missing > 0;
    });
    await backend.pruneOthers(url.text, url.mmproj, key);
    const opened = await openStored(backend, { key, manifest, complete: true, storedAt: Date.now() }, opts, { ctx, requestUrl }, !downloaded, hold);
    progress.phase('done');
    return opened;
  } catch (e) {
    void hold.release();
    throw e;
  }
}

/**
 * The first version that is complete and still holds every chunk (a damaged chunk found by an
 * offline load is dropped, which makes its version partial until a load online fetches it again).
 */
async function firstUsable(backend: GgufCacheBackend, versions: GgufCacheVersion[]): Promise<GgufCacheVersion | undefined> {
  for (const v of versions) {
    if (!v.complete) continue;
    let all = true;
    for (const r of ROLES) {
      const n = chunkCount({ size: v.manifest.files[r].byteLength, chunkBytes: v.manifest.chunkBytes });
      if ((await backend.chunks(v.key, r).recorded()).size !== n) all = false;
    }
    if (all) return v;
  }
  return undefined;
}

/** A complete stored version: sources over its chunks, headers read from them. */
async function openStored(
  backend: GgufCacheBackend, v: GgufCacheVersion, opts: OpenGgufPairOptions,
  online: { ctx: HttpCtx; requestUrl: Record<GgufRole, string> } | null, fromCache: boolean, held?: LockHandle,
): Promise<OpenedGgufPair> {
  const hold = held ?? (await backend.hold(v.key, opts.signal));
  try {
    const sources = {} as Record<GgufRole, ByteSource>;
    for (const r of ROLES) {
      const store = backend.chunks(v.key, r);
      const g = { size: v.manifest.files[r].byteLength, chunkBytes: v.manifest.chunkBytes };
      const refetch = online ? (i: number) => fetchChunk(online.ctx, { requestUrl: online.requestUrl[r], geometry: g }, i) : undefined;
      sources[r] = cachedSource(v.manifest.files[r].url, g, store, await store.recorded(), refetch);
    }
    const headers = {
      text: await readGgufHeader(sources.text, { signal: opts.signal }),
      mmproj: await readGgufHeader(sources.mmproj, { signal: opts.signal }),
    };
    return { headers, sources, fromCache, key: v.key, manifest: v.manifest, release: hold.release };
  } catch (e) {
    if (!held) void hold.release();
    throw e;
  }
}
