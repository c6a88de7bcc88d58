/**
 * GGUF pairs in Node's disk cache (`src/node/gguf-cache.ts` under `src/gguf/cache.ts`), against
 * a real `node:http` server running the fixture server's own handler (Range requests, the
 * file's SHA-256 as ETag, `?etag=wrong|none|linked`, its request log): the first open downloads
 * both `kq` files in chunks into a plain GGUF on disk (byte-identical to the original), the
 * second fetches only the two 1-byte probes, offline needs no server at all, an aborted download
 * resumes mid-file, a wrong ETag is an IntegrityError with nothing kept, a tampered chunk on disk
 * is fetched again online and refused offline, too little disk space is a QuotaError before any
 * write. No GPU: the GPU load through this cache is `test/dawn/gguf-node.test.ts`.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AbortError, InUseError, IntegrityError, NetworkError, QuotaError } from '../../src/errors.js';
import { openGgufPair, type OpenGgufPairOptions } from '../../src/gguf/cache.js';
import { huggingFacePointerUrl, sha256FromEtag, sha256FromLfsPointer } from '../../src/gguf/download.js';
import { deleteDiskCached, listDiskCache } from '../../src/node/cache.js';
import { diskGgufCache } from '../../src/node/gguf-cache.js';
import type { LoadProgress } from '../../src/weights/progress.js';
import { listenFixtures, sharedDir, type LoggedRequest } from '../fixture-server.js';

const KQ = resolve(sharedDir, 'fixtures/gguf/kq');
const TEXT = 'pixtral-kq-tiny-text-q4_k_m.gguf';
const MMPROJ = 'pixtral-kq-tiny-mmproj-f16.gguf';
const CHUNK = 256 << 10;

let server: Awaited<ReturnType<typeof listenFixtures>>;
let origin: string;
let cache: string;
const log: LoggedRequest[] = [];

beforeAll(async () => {
  server = await listenFixtures({ log });
  origin = server.origin;
});
afterAll(() => server.close());
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'pixtral-gguf-cache-'));
  log.length = 0;
  return () => rm(cache, { recursive: true, force: true });
});

const url = (f: string, q = '') => `${origin}/shared/fixtures/gguf/kq/${f}${q}`;
const opts = (o: Partial<OpenGgufPairOptions> = {}): OpenGgufPairOptions => ({ url: url(TEXT), mmproj: url(MMPROJ), chunkBytes: CHUNK, retry: { baseDelayMs: 1, maxDelayMs: 2 }, ...o });
const requests = (file: string) => log.filter((l) => l.path.endsWith(file));
/** Bytes the server was asked for by Range (the probes count 1 each). */
const rangeBytes = () => log.reduce((a, l) => {
  const m = /bytes=(\d+)-(\d+)/.exec(l.range);
  return a + (m ? Number(m[2]) - Number(m[1]) + 1 : 0);
}, 0);

/** Byte equality without a deep diff of megabytes (vitest's toEqual on them takes seconds). */
function expectSameBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.byteLength).toBe(want.byteLength);
  expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
}

async function readAll(src: { size(): Promise<number | undefined>; read(o: number, n: number): Promise<Uint8Array> }): Promise<Uint8Array> {
  const n = (await src.size())!;
  return (await src.read(0, n)).slice();
}

describe('GGUF pairs in the Node disk cache', () => {
  it('downloads in chunks into plain GGUF files; a second open fetches only the probes; listed, deleted', async () => {
    const events: LoadProgress[] = [];
    const first = await openGgufPair(diskGgufCache(cache), opts({ onProgress: (p) => events.push(p) }));
    expect(first.fromCache).toBe(false);
    const original = new Uint8Array(await readFile(join(KQ, TEXT)));
    expectSameBytes(await readAll(first.sources.text), original);
    expectSameBytes(new Uint8Array(await readFile(join(cache, 'models', first.key, 'text.gguf'))), original);
    // The probe, one 256 KiB header read, then one request per chunk: not one per tensor.
    expect(requests(TEXT)).toHaveLength(2 + Math.ceil(original.byteLength / CHUNK));
    expect(events.at(-1)!.phase).toBe('done');
    expect(events.some((e) => e.noFileHash)).toBe(false);

    log.length = 0;
    const again = await openGgufPair(diskGgufCache(cache), opts());
    expect(again.fromCache).toBe(true);
    expect(again.key).toBe(first.key);
    expect(log.map((l) => l.range)).toEqual(['bytes=0-0', 'bytes=0-0']);
    expect(again.headers.text.tensors.length).toBe(first.headers.text.tensors.length);

    const listed = (await listDiskCache(cache)).find((e) => e.kind === 'gguf');
    expect(listed).toMatchObject({ url: url(TEXT), mmproj: url(MMPROJ), complete: true, name: 'pixtral-kq-tiny' });
    expect(Object.keys(listed!.quantMix!)).toEqual(expect.arrayContaining(['Q4_K', 'F32']));
    // Held while open: a delete is refused and keeps the files; released, it goes.
    await expect(deleteDiskCached(url(TEXT), cache)).rejects.toThrow(InUseError);
    expect(await listDiskCache(cache)).toHaveLength(1);
    await first.release();
    await again.release();
    expect(await deleteDiskCached(url(TEXT), cache)).toHaveLength(1);
    expect(await listDiskCache(cache)).toEqual([]);
  });

  it('offline: no request at all; a pair never cached is a NetworkError', async () => {
    await openGgufPair(diskGgufCache(cache), opts());
    log.length = 0;
    const off = await openGgufPair(diskGgufCache(cache), opts({ offline: true }));
    expect(off.fromCache).toBe(true);
    expectSameBytes(await readAll(off.sources.mmproj), new Uint8Array(await readFile(join(KQ, MMPROJ))));
    // The network failing is the same as offline.
    const down = await openGgufPair(diskGgufCache(cache), opts({ fetch: async () => { throw new TypeError('fetch failed'); } }));
    expect(down.fromCache).toBe(true);
    expect(log).toEqual([]);
    await expect(openGgufPair(diskGgufCache(cache), opts({ url: url('pixtral-kq-tiny-text-q4_0.gguf'), offline: true }))).rejects.toThrow(NetworkError);
  });

  it('resumes an aborted download mid-file with fewer bytes, to the same file', async () => {
    const stop = new AbortController();
    const total = (await readFile(join(KQ, TEXT))).byteLength + (await readFile(join(KQ, MMPROJ))).byteLength;
    const aborted = openGgufPair(diskGgufCache(cache), opts({
      signal: stop.signal, concurrency: 1, onProgress: (p) => void (p.phase === 'download' && p.loadedBytes > total / 2 && stop.abort()),
    }));
    await expect(aborted).rejects.toThrow(AbortError);
    const partial = (await listDiskCache(cache))[0]!;
    expect(partial.complete).toBe(false);
    const firstBytes = rangeBytes();
    log.length = 0;
    const done = await openGgufPair(diskGgufCache(cache), opts());
    const secondBytes = rangeBytes();
    // Less than the whole pair again, and together at least all of it (nothing skipped).
    expect(secondBytes).toBeLessThan(total);
    expect(firstBytes + secondBytes).toBeGreaterThanOrEqual(total);
    expectSameBytes(await readAll(done.sources.text), new Uint8Array(await readFile(join(KQ, TEXT))));
    expect((await listDiskCache(cache))[0]!.complete).toBe(true);
  });

  it('a wrong ETag: IntegrityError, nothing of that file kept; X-Linked-Etag read before ETag; no hash said', async () => {
    await expect(openGgufPair(diskGgufCache(cache), opts({ url: url(TEXT, '?etag=wrong') }))).rejects.toThrow(IntegrityError);
    const v = (await listDiskCache(cache))[0]!;
    expect(v.complete).toBe(false);
    expect((await readdir(v.dir)).filter((f) => f.startsWith('text.'))).toEqual([]);

    const events: LoadProgress[] = [];
    const ok = await openGgufPair(diskGgufCache(cache), opts({ url: url(TEXT, '?etag=none'), mmproj: url(MMPROJ, '?etag=linked'), onProgress: (p) => events.push(p) }));
    expect(ok.manifest.files.mmproj.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ok.manifest.files.text.sha256).toBeNull();
    expect(events.filter((e) => e.noFileHash).map((e) => e.noFileHash)).toEqual([url(TEXT)]);
    // The broken version was pruned once a good one was complete.
    expect(await listDiskCache(cache)).toHaveLength(1);
  });

  it('a tampered chunk on disk: fetched again online, refused offline', async () => {
    const first = await openGgufPair(diskGgufCache(cache), opts());
    const path = join(cache, 'models', first.key, 'text.gguf');
    const tamper = async () => {
      const b = await readFile(path);
      b[2 * CHUNK + 10]! ^= 0xff;
      await writeFile(path, b);
    };
    await tamper();
    log.length = 0;
    const online = await openGgufPair(diskGgufCache(cache), opts());
    expectSameBytes(await readAll(online.sources.text), new Uint8Array(await readFile(join(KQ, TEXT))));
    expect(log.filter((l) => l.path.endsWith(TEXT)).map((l) => l.range)).toEqual(['bytes=0-0', `bytes=${2 * CHUNK}-${3 * CHUNK - 1}`]);

    await tamper();
    const offline = await openGgufPair(diskGgufCache(cache), opts({ offline: true }));
    await expect(readAll(offline.sources.text)).rejects.toThrow(/cached chunk 2 \(bytes 524288-786431\) is damaged/);
  });

  it('too little disk space: QuotaError before anything is written', async () => {
    // The pair made to "need" more than any disk has (the check itself is statfs against sizes).
    const huge = diskGgufCache(cache);
    const room = huge.checkRoom.bind(huge);
    huge.checkRoom = (key, bytes) => room(key, bytes * 2 ** 40);
    await expect(openGgufPair(huge, opts())).rejects.toThrow(QuotaError);
    expect(await listDiskCache(cache)).toEqual([]);
  });

  it('reads a SHA-256 from entity tags as servers send them', () => {
    const h = 'ab'.repeat(32);
    expect(sha256FromEtag(`"${h}"`)).toBe(h);
    expect(sha256FromEtag(`W/"${h.toUpperCase()}"`)).toBe(h);
    expect(sha256FromEtag(h)).toBe(h);
    expect(sha256FromEtag('"a1b2c3"')).toBeNull();
    expect(sha256FromEtag(`"${'ab'.repeat(20)}"`)).toBeNull(); // a git SHA-1: not the file's SHA-256
    expect(sha256FromEtag(null)).toBeNull();
  });

  it('finds a Hugging Face file\'s LFS pointer (where a browser cannot see X-Linked-Etag)', () => {
    expect(huggingFacePointerUrl('https://huggingface.co/ggml-org/pixtral-12b-GGUF/resolve/main/pixtral-12b-Q4_K_M.gguf?download=true'))
      .toBe('https://huggingface.co/ggml-org/pixtral-12b-GGUF/raw/main/pixtral-12b-Q4_K_M.gguf?download=true');
    expect(huggingFacePointerUrl('https://hf.co/datasets/a/b/resolve/v1.0/x/y.gguf')).toBe('https://hf.co/datasets/a/b/raw/v1.0/x/y.gguf');
    expect(huggingFacePointerUrl(url(TEXT))).toBeNull();
    const h = 'cd'.repeat(32);
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${h}\nsize 7477207424\n`;
    expect(sha256FromLfsPointer(pointer, 7477207424)).toBe(h);
    expect(sha256FromLfsPointer(pointer, 7477207425)).toBeNull(); // the pointer of another version
    expect(sha256FromLfsPointer('{"not": "a pointer"}', 7477207424)).toBeNull();
  });
});
