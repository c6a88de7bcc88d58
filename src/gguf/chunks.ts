/**
 * A cached GGUF file as fixed-size chunks: chunk `i` holds bytes `[i * chunkBytes, min((i + 1) *
 * chunkBytes, size))`, stored with the SHA-256 it had when it arrived (`ChunkStore`, one per file:
 * the browser's IndexedDB in `src/weights/gguf-store.ts`, Node's disk cache in
 * `src/node/gguf-cache.ts`). `cachedSource` reads a stored file as a `ByteSource` for the GGUF
 * reader and the tensor upload, checking each chunk against its recorded hash as it is read; a
 * chunk that fails is dropped from the store and fetched again where a network is at hand
 * (`refetch`), else refused with IntegrityError naming the file and the chunk.
 */
import { IntegrityError } from '../errors.js';
import { sha256Hex } from '../weights/hash.js';
import type { ByteSource } from './source.js';

/** Default chunk: 32 MiB, so Pixtral-12B's Q4_K_M text file is ~230 Range requests, not 363 per-tensor ones. */
export const DEFAULT_CHUNK_BYTES = 32 << 20;

/** The two files of a GGUF pair. */
export type GgufRole = 'text' | 'mmproj';

/** Where one file's chunks are stored; every method names chunks by index. */
export interface ChunkStore {
  /** Per-chunk SHA-256 recorded for the chunks stored now (no chunk byte is read). */
  recorded(): Promise<Map<number, string>>;
  /** The stored bytes of chunk `index` as they are (unchecked), or undefined. */
  read(index: number): Promise<Uint8Array | undefined>;
  /** Stores chunk `index` with its SHA-256, all or nothing. */
  write(index: number, bytes: Uint8Array, sha256: string): Promise<void>;
  remove(index: number): Promise<void>;
  /** The whole file's SHA-256 once every chunk is stored and the file was hashed whole. */
  verified(): Promise<string | undefined>;
  markVerified(sha256: string): Promise<void>;
  /** Drops every chunk and the whole-file mark (a file that failed its whole-file hash). */
  clear(): Promise<void>;
}

export interface ChunkGeometry {
  size: number;
  chunkBytes: number;
}

export function chunkCount(g: ChunkGeometry): number {
  return Math.ceil(g.size / g.chunkBytes);
}

/** Bytes `start..end` (end exclusive) of chunk `i`. */
export function chunkSpan(g: ChunkGeometry, i: number): { start: number; end: number } {
  const start = i * g.chunkBytes;
  return { start, end: Math.min(g.size, start + g.chunkBytes) };
}

/**
 * A stored file as a ByteSource. Each chunk read is hashed and compared with the SHA-256 recorded
 * when it was stored (the file's whole-file hash was checked then, so the recorded ones are the
 * truth); the last chunk read is kept so tensors read in file order touch each chunk once.
 */
export function cachedSource(
  name: string,
  g: ChunkGeometry,
  store: ChunkStore,
  recorded: Map<number, string>,
  refetch?: (index: number, signal?: AbortSignal) => Promise<Uint8Array>,
): ByteSource {
  let last: { index: number; bytes: Uint8Array } | null = null;
  const chunk = async (i: number, signal?: AbortSignal): Promise<Uint8Array> => {
    if (last?.index === i) return last.bytes;
    const want = recorded.get(i);
    const span = chunkSpan(g, i);
    let bytes = await store.read(i).catch(() => undefined);
    let why = '';
    if (want === undefined || !bytes) why = 'missing';
    else if (bytes.byteLength !== span.end - span.start) why = `${bytes.byteLength} bytes, expected ${span.end - span.start}`;
    else if ((await sha256Hex(bytes)) !== want) why = 'its SHA-256 differs from the one recorded when it was stored';
    if (why) {
      await store.remove(i).catch(() => {});
      if (!refetch || want === undefined) {
        throw new IntegrityError(`${name}: cached chunk ${i} (bytes ${span.start}-${span.end - 1}) is damaged: ${why}; removed, load the model online again`);
      }
      bytes = await refetch(i, signal);
      if ((await sha256Hex(bytes)) !== want) {
        throw new IntegrityError(`${name}: chunk ${i} (bytes ${span.start}-${span.end - 1}) fetched again differs from the one verified with the whole file: the file changed on the server`);
      }
      await store.write(i, bytes, want);
    }
    last = { index: i, bytes: bytes! };
    return bytes!;
  };
  return {
    name,
    size: async () => g.size,
    async read(offset, length, signal) {
      const end = Math.min(g.size, offset + length);
      if (end <= offset) return new Uint8Array(0);
      const first = Math.floor(offset / g.chunkBytes);
      const lastIndex = Math.floor((end - 1) / g.chunkBytes);
      if (first === lastIndex) {
        const c = await chunk(first, signal);
        return c.subarray(offset - first * g.chunkBytes, end - first * g.chunkBytes);
      }
      const out = new Uint8Array(end - offset);
      for (let i = first; i <= lastIndex; i++) {
        const c = await chunk(i, signal);
        const s = chunkSpan(g, i);
        const from = Math.max(offset, s.start);
        const to = Math.min(end, s.end);
        out.set(c.subarray(from - s.start, to - s.start), from - offset);
      }
      return out;
    },
  };
}
