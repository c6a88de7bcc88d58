/**
 * The Node disk cache of remote models (`src/node/cache.ts`) against a real local HTTP server
 * serving the embedded q4 model folder: first load downloads and verifies everything, the second
 * makes only the manifest request, an interrupted file resumes with a Range request, a corrupt
 * response is refetched once and a persistent one is an IntegrityError naming the file, offline
 * uses the cached copy, a 404 is a NetworkError at once. No GPU.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InUseError, IntegrityError, NetworkError } from '../../src/errors.js';
import { defaultCacheDir, deleteDiskCached, listDiskCache, openRemoteModel } from '../../src/node/cache.js';
import { openModelFolder } from '../../src/node/files.js';
import type { LoadProgress } from '../../src/weights/progress.js';
import { repoRoot } from '../fixture-server.js';

const MODEL = join(repoRoot, 'public/models/pixtral-tiny-screens-q4');

interface Served { url: string; ranges: string[]; requests: string[]; corrupt: Map<string, number>; cut: Map<string, number>; stall: Map<string, number> }

let server: Server;
const s: Served = { url: '', ranges: [], requests: [], corrupt: new Map(), cut: new Map(), stall: new Map() };

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const name = decodeURIComponent(new URL(req.url!, 'http://x').pathname.replace(/^\/m\//, ''));
    s.requests.push(name);
    let body: Buffer;
    try {
      body = await readFile(join(MODEL, name));
    } catch {
      res.writeHead(404).end();
      return;
    }
    if ((s.corrupt.get(name) ?? 0) > 0) {
      s.corrupt.set(name, s.corrupt.get(name)! - 1);
      body = Buffer.from(body);
      body[body.length >> 1]! ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range) {
      s.ranges.push(`${name}:${range[1]}`);
      const from = Number(range[1]);
      res.writeHead(206, { 'content-length': body.length - from, 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(from));
      return;
    }
    const stall = s.stall.get(name);
    if (stall !== undefined) {
      // Send part of the body, then nothing, with the connection left open: a stalled server.
      s.stall.delete(name);
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, stall));
      return;
    }
    const cut = s.cut.get(name);
    if (cut !== undefined) {
      // Send part of the body, then drop the connection: a download interrupted mid-file.
      s.cut.delete(name);
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, cut), () => res.destroy());
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  s.url = `http://127.0.0.1:${addr.port}/m/`;
});

afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
});

async function tempCache(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'pixtral-cache-'));
}

const fast = { retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 } };

describe('openRemoteModel', () => {
  it('two loads of one model at once into one cache: each file is downloaded once (the download lock), both read it', async () => {
    const cacheDir = await tempCache();
    s.requests.length = 0;
    const [a, b] = await Promise.all([openRemoteModel({ url: s.url, cacheDir, ...fast }), openRemoteModel({ url: s.url, cacheDir, ...fast })]);
    expect([a.fromCache, b.fromCache].sort()).toEqual([false, true]);
    // Each load fetches the manifest; the files once in all.
    expect(s.requests.sort()).toEqual(['manifest.json', 'manifest.json', 'shard-00000.bin', 'tekken.json']);
    expect(Buffer.from(await b.files.readShard(0, { verify: true })).equals(Buffer.from(await a.files.readShard(0, { verify: true })))).toBe(true);
    await Promise.all([a.release?.(), b.release?.()]);
    await rm(cacheDir, { recursive: true });
  });

  it('downloads once, verifies, then serves from disk with only the manifest request', async () => {
    const cacheDir = await tempCache();
    const local = await openModelFolder(MODEL);
    const events: LoadProgress[] = [];
    s.requests.length = 0;
    const a = await openRemoteModel({ url: s.url, cacheDir, ...fast, onProgress: (p) => events.push(p), progressIntervalMs: 0 });
    expect(a.fromCache).toBe(false);
    expect(s.requests.sort()).toEqual(['manifest.json', 'shard-00000.bin', 'tekken.json']);
    expect(Buffer.from(await a.files.readShard(0, { verify: true })).equals(Buffer.from(await local.files.readShard(0)))).toBe(true);
    // Progress: monotonic bytes ending at the total.
    const bytes = events.map((e) => e.loadedBytes);
    expect(bytes).toEqual([...bytes].sort((x, y) => x - y));
    expect(events.at(-1)).toMatchObject({ phase: 'done', loadedBytes: a.manifest.totalBytes + a.manifest.tokenizer!.byteLength });
    const listed = await listDiskCache(cacheDir);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ url: s.url, complete: true });

    s.requests.length = 0;
    const b = await openRemoteModel({ url: s.url, cacheDir, ...fast });
    expect(b.fromCache).toBe(true);
    expect(s.requests).toEqual(['manifest.json']);

    s.requests.length = 0;
    const off = await openRemoteModel({ url: s.url, cacheDir, offline: true });
    expect(off.manifest.name).toBe(a.manifest.name);
    expect(s.requests).toEqual([]);
    // Held while open (by this process too): a delete is refused and keeps the files.
    await expect(deleteDiskCached(s.url, cacheDir)).rejects.toThrow(InUseError);
    expect(await listDiskCache(cacheDir)).toHaveLength(1);
    await Promise.all([a, b, off].map((m) => m.release?.()));
    expect(await deleteDiskCached(s.url, cacheDir)).toHaveLength(1);
    await expect(openRemoteModel({ url: s.url, cacheDir, offline: true })).rejects.toThrow(NetworkError);
    await rm(cacheDir, { recursive: true });
  });

  it('an interrupted file resumes from its .part with a Range request', async () => {
    const cacheDir = await tempCache();
    s.cut.set('shard-00000.bin', 300_000);
    s.ranges.length = 0;
    const a = await openRemoteModel({ url: s.url, cacheDir, ...fast });
    // The client keeps what reached it before the reset (up to the 300000 bytes sent): the
    // retry asks for the rest from there, never from 0.
    expect(s.ranges).toHaveLength(1);
    const [, from] = s.ranges[0]!.split(':');
    expect(s.ranges[0]).toMatch(/^shard-00000\.bin:/);
    expect(Number(from)).toBeGreaterThan(0);
    expect(Number(from)).toBeLessThanOrEqual(300_000);
    await a.files.readShard(0, { verify: true }); // hash matches the manifest
    await rm(cacheDir, { recursive: true });
  });

  it('a stalled download is abandoned after stallTimeoutMs and resumed', async () => {
    const cacheDir = await tempCache();
    s.stall.set('shard-00000.bin', 200_000);
    s.ranges.length = 0;
    s.requests.length = 0;
    const a = await openRemoteModel({ url: s.url, cacheDir, ...fast, stallTimeoutMs: 300 });
    expect(s.ranges).toHaveLength(1);
    expect(s.ranges[0]).toMatch(/^shard-00000\.bin:/);
    expect(Number(s.ranges[0]!.split(':')[1])).toBeGreaterThan(0);
    await a.files.readShard(0, { verify: true });
    await rm(cacheDir, { recursive: true });
  });

  it('a corrupt response is refetched once; corrupt twice is an IntegrityError naming the file, nothing kept', async () => {
    const cacheDir = await tempCache();
    s.corrupt.set('tekken.json', 1);
    await openRemoteModel({ url: s.url, cacheDir, ...fast });
    await rm(cacheDir, { recursive: true });

    const again = await tempCache();
    s.corrupt.set('tekken.json', 2);
    const e = await openRemoteModel({ url: s.url, cacheDir: again, ...fast }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IntegrityError);
    expect((e as Error).message).toMatch(/tekken\.json .*failed verification twice: sha256/);
    const [version] = await readdir(join(again, 'models'));
    expect(await readdir(join(again, 'models', version!))).not.toContain('tekken.json');
    s.corrupt.clear();
    await rm(again, { recursive: true });
  });

  it('404 is a NetworkError at once; the cache root follows PIXTRAL_WEBGPU_CACHE, then XDG_CACHE_HOME', async () => {
    const cacheDir = await tempCache();
    s.requests.length = 0;
    const e = await openRemoteModel({ url: `${s.url}missing/`, cacheDir, ...fast }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NetworkError);
    expect((e as NetworkError).message).toMatch(/missing\/manifest\.json: HTTP 404/);
    expect(s.requests).toHaveLength(1);
    expect(defaultCacheDir({ PIXTRAL_WEBGPU_CACHE: '/c' })).toBe('/c');
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/pixtral-webgpu');
    expect(defaultCacheDir({ HOME: '/h' })).toMatch(/\.cache\/pixtral-webgpu$/);
    await rm(cacheDir, { recursive: true });
  });

  it('a local folder is read in place; a damaged shard is an IntegrityError naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pixtral-folder-'));
    for (const f of ['manifest.json', 'shard-00000.bin', 'tekken.json']) await writeFile(join(dir, f), await readFile(join(MODEL, f)));
    const ok = await openModelFolder(dir);
    expect((await ok.files.readTokenizer())!.byteLength).toBe(ok.manifest.tokenizer!.byteLength);
    const shard = await readFile(join(dir, 'shard-00000.bin'));
    shard[100]! ^= 1;
    await writeFile(join(dir, 'shard-00000.bin'), shard);
    await expect(ok.files.readShard(0)).rejects.toThrow(/shard-00000\.bin fails verification: sha256/);
    await expect(openModelFolder(join(dir, 'nope'))).rejects.toThrow(/is not a converted model folder: no such folder/);
    await rm(dir, { recursive: true });
  });
});
