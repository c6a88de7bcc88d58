/**
 * Downloading one GGUF file into a `ChunkStore` with the model downloader's HTTP code
 * (`src/weights/http.ts`: retries with backoff, the stall guard, abort), one Range request per
 * chunk, and its integrity:
 *
 * - `probeGguf`: one `Range: bytes=0-0` request gives the file's size (`Content-Range`) and the
 *   SHA-256 the server states for it: Hugging Face's `X-Linked-Etag`, else `ETag`, when it is 64
 *   hex digits (quotes and `W/` stripped); anything else (a git SHA-1, an opaque tag) is no hash.
 *   A browser never sees Hugging Face's `X-Linked-Etag` (it is on the redirect to the CDN, which
 *   `fetch` follows unseen), so for a Hugging Face `resolve` URL without one the file's LFS
 *   pointer is read instead (`raw` in place of `resolve`: `oid sha256:<hex>`, `size <n>`), as
 *   the Hub's own clients do.
 * - `downloadGgufFile`: the chunks in index order, a few at a time; each arriving chunk is
 *   length-checked, SHA-256'd and stored with that hash, and fed in order into one incremental
 *   whole-file SHA-256 (`hash-wasm`). Chunks already stored (a download that was aborted or
 *   failed) are re-read and checked against their recorded hash instead of fetched: a damaged one
 *   is fetched again, the good ones feed the whole-file hash, so a resume continues mid-file.
 *   The whole file's hash must equal the stated one, else IntegrityError and every chunk of the
 *   file is dropped (nothing half-verified is reused). Where no hash is stated, the whole-file
 *   hash is recorded but checks nothing, and a progress event says so (`noFileHash`).
 */
import { createSHA256, type IHasher } from 'hash-wasm';
import { IntegrityError, NetworkError } from '../errors.js';
import { sha256Hex } from '../weights/hash.js';
import { abortErrorFrom, fetchOnce, Retryable, withRetries, type HttpCtx } from '../weights/http.js';
import type { ProgressTracker } from '../weights/progress.js';
import { chunkCount, chunkSpan, type ChunkGeometry, type ChunkStore } from './chunks.js';

/** What one small request tells about a remote GGUF. */
export interface GgufProbe {
  size: number;
  /** The whole file's SHA-256 stated by the server, or null. */
  sha256: string | null;
  /** The raw validator (`X-Linked-Etag` or `ETag`), so a changed file is a new cache version. */
  etag: string | null;
}

/** The SHA-256 a (possibly weak, possibly quoted) entity tag states, or null. */
export function sha256FromEtag(tag: string | null): string | null {
  if (!tag) return null;
  const t = tag.trim().replace(/^W\//i, '').replace(/^"(.*)"$/, '$1');
  return /^[0-9a-f]{64}$/i.test(t) ? t.toLowerCase() : null;
}

/**
 * The `raw` URL of a Hugging Face `resolve` URL (`https://huggingface.co/<repo>/resolve/<rev>/<path>`,
 * `hf.co` too, datasets and spaces alike), which serves an LFS file's pointer; null for any other URL.
 */
export function huggingFacePointerUrl(url: string): string | null {
  const u = new URL(url);
  if (!/^(www\.)?(huggingface\.co|hf\.co)$/.test(u.hostname)) return null;
  const m = /^(.*?)\/resolve\/(.+)$/.exec(u.pathname);
  if (!m) return null;
  u.pathname = `${m[1]}/raw/${m[2]}`;
  return u.href;
}

/** The SHA-256 a git-lfs pointer file states, when its size is `size`; else null. */
export function sha256FromLfsPointer(text: string, size: number): string | null {
  const oid = /^oid sha256:([0-9a-f]{64})$/m.exec(text);
  const n = /^size (\d+)$/m.exec(text);
  return oid && n && Number(n[1]) === size ? oid[1]! : null;
}

/** The SHA-256 of a Hugging Face file from its LFS pointer, or null (not HF, not LFS, unreachable). */
async function pointerSha256(ctx: HttpCtx, url: string, size: number): Promise<string | null> {
  const raw = huggingFacePointerUrl(url);
  if (!raw) return null;
  try {
    const body = await withRetries(ctx, raw, () => fetchOnce(ctx, raw, null));
    // A pointer is ~130 bytes; a small file's own content would be larger or not match.
    return body && body.byteLength < 1024 ? sha256FromLfsPointer(new TextDecoder().decode(body), size) : null;
  } catch (e) {
    if (e instanceof NetworkError) return null;
    throw e;
  }
}

/** Size and stated SHA-256 of the file at `url` (one Range request, retried like a download). */
export async function probeGguf(ctx: HttpCtx, url: string): Promise<GgufProbe> {
  let probe: GgufProbe | undefined;
  await withRetries(ctx, url, () =>
    fetchOnce(ctx, url, null, undefined, {
      range: { start: 0, end: 0 },
      onResponse(res) {
        const total = /\/(\d+)$/.exec(res.headers.get('Content-Range') ?? '');
        if (!total) throw new NetworkError(`${url}: no file size in the Range answer (Content-Range ${res.headers.get('Content-Range')})`);
        const linked = res.headers.get('X-Linked-Etag');
        const etag = res.headers.get('ETag');
        const sha256 = sha256FromEtag(linked) ?? sha256FromEtag(etag);
        probe = { size: Number(total[1]), sha256, etag: linked ?? etag };
      },
    }),
  );
  if (probe!.sha256 === null) probe!.sha256 = await pointerSha256(ctx, url, probe!.size);
  return probe!;
}

export interface FileDownload {
  url: string;
  /** `url` with the caller's query (a signed URL's signature), as requested. */
  requestUrl: string;
  geometry: ChunkGeometry;
  store: ChunkStore;
  /** The stated SHA-256 (null: none stated). */
  sha256: string | null;
  /** Progress key of chunk 0 (the pair's chunks are numbered across both files). */
  firstKey: number;
  concurrency: number;
  /** The caller's own signal (an abort of the load, as opposed to `stop`'s). */
  userSignal?: AbortSignal;
  /** Stops every other request of the load now (the first failure calls it). */
  stop: () => void;
}

/** One chunk from the network, length-checked (a wrong length is retried, then IntegrityError). */
export async function fetchChunk(ctx: HttpCtx, d: Pick<FileDownload, 'requestUrl' | 'geometry'>, i: number, onChunk?: (n: number, delta: number) => void): Promise<Uint8Array> {
  const span = chunkSpan(d.geometry, i);
  const len = span.end - span.start;
  return withRetries(ctx, d.requestUrl, async () => {
    const b = await fetchOnce(ctx, d.requestUrl, len, onChunk, { range: { start: span.start, end: span.end - 1 } });
    if (!b) throw new Retryable(`chunk ${i} (bytes ${span.start}-${span.end - 1}) is not ${len} bytes long`, undefined, null, true);
    return b;
  });
}

/** Stored chunk `i` if it matches its recorded hash; a damaged one is removed (undefined). */
async function storedChunk(d: FileDownload, recorded: Map<number, string>, i: number): Promise<Uint8Array | undefined> {
  const want = recorded.get(i);
  if (want === undefined) return undefined;
  const span = chunkSpan(d.geometry, i);
  const b = await d.store.read(i).catch(() => undefined);
  if (b && b.byteLength === span.end - span.start && (await sha256Hex(b)) === want) return b;
  await d.store.remove(i);
  recorded.delete(i);
  return undefined;
}

/**
 * Makes every chunk of one file stored and the whole file verified (see the module comment).
 * Returns the whole file's SHA-256 and the chunks' recorded hashes.
 */
export async function downloadGgufFile(ctx: HttpCtx, d: FileDownload, progress: ProgressTracker): Promise<{ sha256: string; recorded: Map<number, string> }> {
  const n = chunkCount(d.geometry);
  const recorded = await d.store.recorded();
  const done = await d.store.verified();
  if (done && recorded.size === n) {
    for (let i = 0; i < n; i++) progress.cached(d.firstKey + i, chunkSpan(d.geometry, i).end - chunkSpan(d.geometry, i).start);
    return { sha256: done, recorded };
  }
  const hasher: IHasher = (await createSHA256()).init();
  // fed[i] settles once chunk i went into the whole-file hash: chunks arrive in any order, the
  // hash takes them in file order; a failure anywhere releases every waiting worker.
  const fed: { promise: Promise<void>; resolve: () => void }[] = [];
  for (let i = 0; i < n; i++) {
    let resolve!: () => void;
    fed.push({ promise: new Promise<void>((r) => (resolve = r)), resolve });
  }
  let fail!: (e: unknown) => void;
  const failed = new Promise<never>((_, r) => (fail = r));
  failed.catch(() => {});
  let next = 0;
  let failure: { e: unknown } | null = null;
  const worker = async () => {
    while (next < n && !failure) {
      const i = next++;
      const key = d.firstKey + i;
      const span = chunkSpan(d.geometry, i);
      const len = span.end - span.start;
      let bytes = await storedChunk(d, recorded, i);
      if (bytes) progress.cached(key, len);
      else {
        bytes = await fetchChunk(ctx, d, i, (got, delta) => progress.chunk(key, got, delta, len));
        const sha = await sha256Hex(bytes);
        await d.store.write(i, bytes, sha);
        recorded.set(i, sha);
        progress.commit(key, len);
      }
      if (i > 0) await Promise.race([fed[i - 1]!.promise, failed]);
      hasher.update(bytes);
      fed[i]!.resolve();
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(d.concurrency, n)) }, () =>
    worker().catch((e: unknown) => {
      if (!failure) {
        failure = { e };
        d.stop();
      }
      fail(e);
    }),
  );
  await Promise.all(workers);
  if (d.userSignal?.aborted) throw abortErrorFrom(d.userSignal);
  if (failure) throw (failure as { e: unknown }).e;
  progress.phase('verify', -1);
  const sha256 = hasher.digest('hex');
  if (d.sha256 !== null && sha256 !== d.sha256) {
    await d.store.clear();
    throw new IntegrityError(`${d.url}: the downloaded file's SHA-256 is ${sha256}, the server states ${d.sha256} (ETag); its ${n} cached chunks were dropped`);
  }
  await d.store.markVerified(sha256);
  return { sha256, recorded };
}
