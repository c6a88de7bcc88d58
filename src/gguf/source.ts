/**
 * Byte sources a GGUF is read from without holding the whole file: an HTTP(S) URL read with
 * `Range` requests (Hugging Face serves its files with Range and CORS), a `Blob`/`File` read in
 * place (a file picked from disk: nothing is uploaded or copied), or bytes already in memory.
 * Node's files come from `./source-node.ts` (kept apart so the browser bundle never sees `node:`).
 */
import { FormatError, IntegrityError, NetworkError } from '../errors.js';

export interface ByteSource {
  /** What the errors name: the URL, the file name. */
  readonly name: string;
  /** Total bytes, when known before the first read (a Blob, a HEAD-less URL learns it on read). */
  size(): Promise<number | undefined>;
  /** Exactly `length` bytes from `offset`, or fewer only where the source ends. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** Bytes in memory (tests, a file already read). */
export function bytesSource(bytes: Uint8Array, name = 'bytes'): ByteSource {
  return {
    name,
    size: async () => bytes.byteLength,
    read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.byteLength, offset + length)),
  };
}

/** A Blob or File, read slice by slice (`File` objects from a picker stay on disk). */
export function blobSource(blob: Blob, name = (blob as File).name ?? 'blob'): ByteSource {
  return {
    name,
    size: async () => blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

/**
 * A URL read with `Range: bytes=a-b`. The server must answer 206 with a `Content-Range` (its
 * total gives the file size); a 200 (no Range support) is refused rather than downloading the
 * whole file to read its header.
 */
export function urlSource(url: string, opts: { fetch?: typeof fetch; headers?: Record<string, string> } = {}): ByteSource {
  const doFetch = opts.fetch ?? ((...a: Parameters<typeof fetch>) => globalThis.fetch(...a));
  let total: number | undefined;
  return {
    name: url,
    size: async () => total,
    async read(offset, length, signal) {
      if (length <= 0) return new Uint8Array(0);
      if (total !== undefined && offset >= total) return new Uint8Array(0);
      let res: Response;
      try {
        res = await doFetch(url, { headers: { ...opts.headers, Range: `bytes=${offset}-${offset + length - 1}` }, signal });
      } catch (cause) {
        if (signal?.aborted) throw signal.reason;
        throw new NetworkError(`${url}: ${(cause as Error).message}`, undefined, { cause });
      }
      if (res.status === 416) {
        await res.body?.cancel();
        return new Uint8Array(0);
      }
      if (res.status !== 206) {
        await res.body?.cancel();
        if (res.ok) throw new FormatError(`${url}: the server ignored the Range request (HTTP ${res.status}); a GGUF is read in ranges`);
        throw new NetworkError(`${url}: HTTP ${res.status} for bytes ${offset}-${offset + length - 1}`, res.status);
      }
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('Content-Range') ?? '');
      if (range && range[3] !== '*') total = Number(range[3]);
      const body = new Uint8Array(await res.arrayBuffer());
      if (range && Number(range[1]) !== offset) {
        throw new IntegrityError(`${url}: asked for bytes from ${offset}, the server sent them from ${range[1]}`);
      }
      return body.byteLength > length ? body.subarray(0, length) : body;
    },
  };
}
