/**
 * The model loader end to end in real headless Chromium: real HTTP through the Vite dev server
 * (`/scratch/store-fixture/`, see store-fixture.ts), real IndexedDB, real WebGPU. Failures
 * (a 500, a body cut mid-stream, tampered bytes, an abort, no network) are injected by wrapping
 * `fetch` around the real one; nothing of IndexedDB or WebGPU is mocked.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AbortError, FormatError, InUseError, IntegrityError, NetworkError, QuotaError } from '../../src/errors.js';
import { readBuffer } from '../../src/gpu/tensor.js';
import {
  deleteCachedModel, listCachedModels, loadModelFiles, modelDbName, sha256Hex, storageUsage, uploadModel,
  type LoadProgress, type ModelFiles,
} from '../../src/weights/index.js';
import { getGpu } from '../helpers/gpu.js';
import { buildStoreFixture, STORE_FIXTURE_URL, type StoreFixture } from './store-fixture-data.js';
import { ensureServed, serverLog } from './store-serve.js';

const URL_ = STORE_FIXTURE_URL;
/** Loads made by the current test, released after it (each holds the model's shared Web Lock). */
const held: { release(): Promise<void> }[] = [];
async function load(opts: Parameters<typeof loadModelFiles>[0]) {
  const r = await loadModelFiles(opts);
  held.push(r);
  return r;
}
/** Retries without waiting: the schedule itself is unit-tested (test/unit/weights-retry.test.ts). */
const fast = { baseDelayMs: 1, maxDelayMs: 4 };
let fx: StoreFixture;
let hash: string;

const nameOf = (input: RequestInfo | URL) => {
  const u = new URL(input instanceof Request ? input.url : String(input));
  return u.pathname.slice(u.pathname.lastIndexOf('/') + 1);
};

type Hook = (name: string, nth: number, real: () => Promise<Response>) => Promise<Response>;

/** A fetch that records every request by file name and lets `hook` alter the real response. */
function traced(hook?: Hook) {
  const calls: string[] = [];
  const f: typeof fetch = (input, init) => {
    const name = nameOf(input);
    calls.push(name);
    const nth = calls.filter((c) => c === name).length;
    const real = () => globalThis.fetch(input, init);
    return hook ? hook(name, nth, real) : real();
  };
  return { fetch: f, calls, count: (name: string) => calls.filter((c) => c === name).length };
}

/**
 * Re-serves a response body in `size`-byte chunks; can cut it with a stream error after
 * `failAfter` bytes, flip one byte (`tamper`), or call `onBytes` after each chunk.
 */
function rechunk(res: Response, size: number, o: { failAfter?: number; tamper?: boolean; onBytes?: (n: number) => void } = {}): Response {
  const reader = res.body!.getReader();
  let pending = new Uint8Array(0);
  let sent = 0;
  let srcDone = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      while (pending.byteLength < size && !srcDone) {
        const r = await reader.read();
        if (r.done) srcDone = true;
        else {
          const merged = new Uint8Array(pending.byteLength + r.value.byteLength);
          merged.set(pending);
          merged.set(r.value, pending.byteLength);
          pending = merged;
        }
      }
      if (o.failAfter !== undefined && sent >= o.failAfter) {
        c.error(new TypeError('connection reset (injected)'));
        void reader.cancel();
        return;
      }
      if (!pending.byteLength) {
        c.close();
        return;
      }
      const chunk = pending.slice(0, size);
      pending = pending.subarray(chunk.byteLength);
      if (o.tamper && sent <= 1000 && 1000 < sent + chunk.byteLength) chunk[1000 - sent]! ^= 0xff;
      sent += chunk.byteLength;
      c.enqueue(chunk);
      o.onBytes?.(sent);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: res.status, headers: res.headers });
}

/** Reads one key of a model database with the raw IndexedDB API (independent of the code under test). */
async function rawIdb<T>(dbName: string, mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await new Promise<IDBDatabase>((res, rej) => {
    const r = indexedDB.open(dbName);
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
  try {
    return await new Promise<T>((res, rej) => {
      const tx = db.transaction('files', mode);
      const req = fn(tx.objectStore('files'));
      tx.oncomplete = () => res(req.result as T);
      tx.onerror = () => rej(tx.error);
    });
  } finally {
    db.close();
  }
}

async function dbNames(): Promise<string[]> {
  return (await indexedDB.databases()).map((d) => d.name ?? '');
}

function shardBytes(i: number): Uint8Array {
  return fx.files.get(fx.manifest.shards[i]!.name)!;
}

/** First differing index, -1 if equal (toEqual on big typed arrays is slow: it walks keys). */
function diffAt(a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function expectTensorsEqual(files: ModelFiles): Promise<void> {
  for (const [name, t] of fx.tensors) {
    expect(diffAt(await files.readTensor(name), t.data), name).toBe(-1);
    if (t.scales) expect(diffAt(await files.readTensor(name, 'scales'), t.scales), `${name} scales`).toBe(-1);
  }
}

const totalBytes = () => [...fx.files].filter(([n]) => n !== 'manifest.json').reduce((a, [, b]) => a + b.byteLength, 0);

beforeAll(async () => {
  fx = await buildStoreFixture();
  hash = await sha256Hex(fx.files.get('manifest.json')!);
  await ensureServed(fx);
});

beforeEach(async () => {
  await deleteCachedModel(hash);
  await deleteCachedModel(URL_);
});

/** Releases this test's loads, then deletes (a held model cannot be deleted). */
async function forget(urlOrHash: string): Promise<string[]> {
  await Promise.all(held.splice(0).map((h) => h.release()));
  return deleteCachedModel(urlOrHash);
}

afterEach(async () => {
  await Promise.all(held.splice(0).map((h) => h.release()));
});

/**
 * The cache entries of this file's fixture URL. Other test files in the same browser cache
 * their own models, so assertions about "what is cached" look only at this URL.
 */
async function fixtureModels() {
  const url = new URL(URL_, location.href).href;
  return (await listCachedModels()).filter((m) => m.url === url);
}

describe('loadModelFiles', () => {
  it('streams with monotonic progress that reaches the total, through a retried mid-stream failure', async () => {
    const events: LoadProgress[] = [];
    const t = traced(async (name, nth, real) =>
      rechunk(await real(), 8192, name === 'shard-00002.bin' && nth === 1 ? { failAfter: 100_000 } : {}),
    );
    const r = await load({ url: URL_, fetch: t.fetch, onProgress: (e) => events.push({ ...e }), progressIntervalMs: 0, concurrency: 1, retry: fast });
    expect(r.manifestHash).toBe(hash);
    expect(r.fromCache).toBe(false);
    expect(r.downloaded).toEqual(['shard-00000.bin', 'shard-00001.bin', 'shard-00002.bin', 'shard-00003.bin', 'tekken.json']);
    expect(t.count('shard-00002.bin')).toBe(2); // cut once, retried once

    for (let i = 1; i < events.length; i++) expect(events[i]!.loadedBytes).toBeGreaterThanOrEqual(events[i - 1]!.loadedBytes);
    const last = events.at(-1)!;
    expect(last.phase).toBe('done');
    expect(last.loadedBytes).toBe(totalBytes());
    expect(last.totalBytes).toBe(totalBytes());
    // Progress moves inside a shard, not only at shard ends (files are fetched in order here).
    const ends = [0];
    for (const s of fx.manifest.shards) ends.push(ends.at(-1)! + s.byteLength);
    const mid = events.filter((e) => e.phase === 'download' && !ends.includes(e.loadedBytes));
    expect(mid.length).toBeGreaterThan(10);
    expect(events.some((e) => e.phase === 'verify')).toBe(true);
    expect(events.some((e) => e.bytesPerSecond > 0)).toBe(true);
    expect(events.every((e) => e.shardCount === 4 || e.phase === 'manifest')).toBe(true);
    await expectTensorsEqual(r.files);
    expect(new TextDecoder().decode((await r.files.readTokenizer())!)).toBe(new TextDecoder().decode(fx.files.get('tekken.json')!));
  });

  it('retries a 500, fails at once on a 404', async () => {
    const t = traced(async (name, nth, real) => (name === 'shard-00001.bin' && nth <= 2 ? new Response('oops', { status: 500 }) : real()));
    await load({ url: URL_, fetch: t.fetch, retry: fast });
    expect(t.count('shard-00001.bin')).toBe(3);

    await forget(hash);
    const t404 = traced(async (name, _n, real) => (name === 'shard-00003.bin' ? new Response('no', { status: 404 }) : real()));
    const err = await load({ url: URL_, fetch: t404.fetch, retry: fast }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).status).toBe(404);
    expect(t404.count('shard-00003.bin')).toBe(1);
  });

  it('after an abort mid-download, the next load fetches only the missing files', async () => {
    const ac = new AbortController();
    let abortedAt = 0;
    const t = traced(async (name, _n, real) => {
      const res = await real();
      return name === 'shard-00002.bin'
        ? rechunk(res, 8192, { onBytes: (n) => { if (n >= 40_000 && !abortedAt) { abortedAt = performance.now(); ac.abort(); } } })
        : res;
    });
    const err = await load({ url: URL_, fetch: t.fetch, signal: ac.signal, concurrency: 1, retry: fast }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(abortedAt).toBeGreaterThan(0);
    const callsAtAbort = t.calls.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(t.calls.length).toBe(callsAtAbort); // no request after the abort
    expect(t.calls).toEqual(['manifest.json', 'shard-00000.bin', 'shard-00001.bin', 'shard-00002.bin']);
    const [cached] = await fixtureModels();
    expect(cached).toMatchObject({ manifestHash: hash, complete: false, bytes: shardBytes(0).byteLength + shardBytes(1).byteLength });

    const t2 = traced();
    const r = await load({ url: URL_, fetch: t2.fetch, retry: fast });
    expect(t2.calls.sort()).toEqual(['manifest.json', 'shard-00002.bin', 'shard-00003.bin', 'tekken.json']);
    expect(r.downloaded).toEqual(['shard-00002.bin', 'shard-00003.bin', 'tekken.json']);
    await expectTensorsEqual(r.files);
    expect((await fixtureModels())[0]).toMatchObject({ complete: true, bytes: totalBytes() });
  });

  it('refetches a tampered shard once; a persistently tampered one raises IntegrityError and is not stored', async () => {
    const once = traced(async (name, nth, real) => (name === 'shard-00001.bin' && nth === 1 ? rechunk(await real(), 65536, { tamper: true }) : real()));
    const r = await load({ url: URL_, fetch: once.fetch, retry: fast });
    expect(once.count('shard-00001.bin')).toBe(2);
    await expectTensorsEqual(r.files);

    await forget(hash);
    const always = traced(async (name, _n, real) => (name === 'shard-00001.bin' ? rechunk(await real(), 65536, { tamper: true }) : real()));
    const err = await load({ url: URL_, fetch: always.fetch, retry: fast, concurrency: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain('shard-00001.bin');
    expect(always.count('shard-00001.bin')).toBe(2);
    expect(await rawIdb(modelDbName(hash), 'readonly', (s) => s.get('shard:shard-00001.bin'))).toBeUndefined();
    expect(await rawIdb(modelDbName(hash), 'readonly', (s) => s.getAllKeys())).toEqual(['manifest', 'shard:shard-00000.bin']);
  });

  it('throws QuotaError and writes nothing when storage is short', async () => {
    let persistCalls = 0;
    const storage = {
      estimate: async () => ({ quota: 50_000_000, usage: 49_900_000 }),
      persist: async () => (persistCalls++, true),
    };
    const t = traced();
    const err = await load({ url: URL_, fetch: t.fetch, storage }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaError);
    expect((err as QuotaError).availableBytes).toBe(100_000);
    expect((err as QuotaError).neededBytes).toBeGreaterThan(totalBytes());
    expect(t.calls).toEqual(['manifest.json']);
    expect(persistCalls).toBe(0);
    expect(await dbNames()).not.toContain(modelDbName(hash));
    expect((await listCachedModels()).map((m) => m.manifestHash)).not.toContain(hash);

    // The same with room to spare goes through and asks for persistence.
    const ok = await load({ url: URL_, storage: { ...storage, estimate: async () => ({ quota: 1e9, usage: 0 }) } });
    expect(ok.persisted).toBe(true);
    expect(persistCalls).toBe(1);
    // Cached: nothing to store, so persisted() is asked, not persist(); a browser without either says null.
    const again = await load({ url: URL_, storage: { ...storage, persisted: async () => false } });
    expect([again.fromCache, again.persisted, persistCalls]).toEqual([true, false, 1]);
    expect((await load({ url: URL_, storage: { estimate: storage.estimate } })).persisted).toBeNull();
  });

  it('without a storage estimate, says so in a progress event and downloads', async () => {
    for (const storage of [null, { estimate: () => Promise.reject(new DOMException('denied', 'SecurityError')) }]) {
      await forget(URL_);
      const events: LoadProgress[] = [];
      const r = await load({ url: URL_, storage, onProgress: (e) => events.push(e), retry: fast });
      expect(r.downloaded.length).toBe(5);
      const warned = events.filter((e) => e.warning);
      expect(warned.length).toBe(1);
      expect(warned[0]!.warning).toMatch(
        storage ? /navigator\.storage\.estimate\(\) failed: denied: downloading [\d.]+ [KM]B without a storage quota check/ : /navigator\.storage is not available/,
      );
      // Said before the first byte is downloaded.
      expect(events.indexOf(warned[0]!)).toBeLessThan(events.findIndex((e) => e.loadedBytes > 0));
    }
  });

  it('an onProgress that throws does not stop the load and leaves no uncaught error', async () => {
    let calls = 0;
    const r = await load({
      url: URL_, retry: fast, progressIntervalMs: 0,
      onProgress: () => {
        calls++;
        throw new Error('progress UI crashed');
      },
    });
    expect(calls).toBe(1);
    expect(r.downloaded.length).toBe(5);
    await expectTensorsEqual(r.files);
  });

  it('loads a second time with no network at all', async () => {
    await load({ url: URL_, retry: fast });
    const dead = traced(async () => {
      throw new TypeError('Failed to fetch (offline)');
    });
    const r = await load({ url: URL_, fetch: dead.fetch, retry: fast });
    expect(r.offline).toBe(true);
    expect(r.fromCache).toBe(true);
    expect(r.manifestHash).toBe(hash);
    expect(dead.calls).toEqual(Array(5).fill('manifest.json')); // 1 + 4 retries, then the cache
    await expectTensorsEqual(r.files);

    const none = traced();
    const events: LoadProgress[] = [];
    const r2 = await load({ url: `${URL_}manifest.json`, offline: true, fetch: none.fetch, onProgress: (e) => events.push(e) });
    expect(none.calls).toEqual([]);
    expect(r2.fromCache).toBe(true);
    expect(events.at(-1)).toMatchObject({ phase: 'done', loadedBytes: totalBytes() });
    expect(events.some((e) => e.phase === 'cached')).toBe(true);

    const err = await load({ url: '/scratch/not-a-model/', offline: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
  });

  it('a signed URL keeps its query string on every file; the cache keys the model by the URL without it', async () => {
    const sig = `sig=${crypto.randomUUID()}&exp=99`;
    const r = await load({ url: `${URL_}?${sig}`, retry: fast });
    expect(r.downloaded.length).toBe(5);
    const mine = (await serverLog()).filter((u) => u.includes(sig));
    expect(mine.sort()).toEqual(['manifest.json', ...fx.manifest.shards.map((s) => s.name), 'tekken.json'].map((n) => `${URL_}${n}?${sig}`).sort());
    expect((await fixtureModels()).map((m) => m.url)).toEqual([new URL(URL_, location.href).href]);
    // Another signature for the same folder: the same cached model, only the manifest is fetched.
    const t = traced();
    const again = await load({ url: `${URL_}manifest.json?sig=other`, fetch: t.fetch, retry: fast });
    expect([again.fromCache, again.manifestHash, t.calls]).toEqual([true, hash, ['manifest.json']]);
  });

  it('a server that stops sending mid-file: each stalled request is retried after stallTimeoutMs; a permanent stall (here of the manifest too) is a NetworkError', async () => {
    // The fixture server sends the first 2000 bytes of each file, then nothing, once per URL.
    const once = `stall=2000&stallTimes=1&run=${crypto.randomUUID()}`;
    const r = await load({ url: `${URL_}?${once}`, stallTimeoutMs: 1000, retry: fast });
    await expectTensorsEqual(r.files);
    const log = (await serverLog()).filter((u) => u.endsWith(once));
    // At least 2: the stalled request and its retry (a loaded machine may slow a retry past the guard too).
    for (const s of fx.manifest.shards) expect(log.filter((u) => u.startsWith(`${URL_}${s.name}?`)).length, s.name).toBeGreaterThanOrEqual(2);

    await forget(URL_);
    const always = `stall=2000&run=${crypto.randomUUID()}`;
    const err = await load({ url: `${URL_}?${always}`, stallTimeoutMs: 500, retry: { ...fast, retries: 1 }, concurrency: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(/manifest\.json\?.*failed after 2 attempts: .*no bytes for 0\.5 s, stalled after 2000 bytes/);
  });

  it('a tokenizer or shard named outside the model folder is refused before any request for it', async () => {
    const text = new TextDecoder().decode(fx.files.get('manifest.json')!);
    for (const [from, to] of [
      ['"file": "tekken.json"', '"file": "../x"'],
      ['"file": "tekken.json"', '"file": "https://other.host/x"'],
      ['"name": "shard-00003.bin"', '"name": ".."'],
    ] as const) {
      expect(text).toContain(from);
      const t = traced(async (name, _n, real) => (name === 'manifest.json' ? new Response(text.replace(from, to)) : real()));
      const err = await load({ url: URL_, fetch: t.fetch, retry: fast }).catch((e: unknown) => e);
      expect(err, to).toBeInstanceOf(FormatError);
      expect((err as Error).message).toContain(`${JSON.stringify(JSON.parse(`{${to}}`)[to.startsWith('"file"') ? 'file' : 'name'])} is not a plain file name`);
      expect(t.calls).toEqual(['manifest.json']);
    }
  });

  it('a new manifest at the same URL replaces the old version once complete, unless the old one is held', async () => {
    const v1 = await load({ url: URL_, retry: fast });
    const text = new TextDecoder().decode(fx.files.get('manifest.json')!).replace('"name": "store-fixture"', '"name": "store-fixture v2"');
    const v2 = traced(async (name, _n, real) => (name === 'manifest.json' ? new Response(text) : real()));
    const r = await load({ url: URL_, fetch: v2.fetch, retry: fast });
    expect(r.manifestHash).not.toBe(hash);
    expect(r.manifest.name).toBe('store-fixture v2');
    // v1 is still held (by this page here; another tab in real life): the prune leaves it.
    expect((await fixtureModels()).map((m) => m.manifestHash).sort()).toEqual([hash, r.manifestHash].sort());
    await expectTensorsEqual(v1.files);
    await v1.release();
    // The next load prunes it.
    await load({ url: URL_, fetch: v2.fetch, retry: fast });
    expect((await fixtureModels()).map((m) => m.manifestHash)).toEqual([r.manifestHash]);
    expect(await dbNames()).not.toContain(modelDbName(hash));
    expect(await dbNames()).toContain(modelDbName(r.manifestHash));
    await forget(r.manifestHash);
  });

  it('deleteCachedModel removes the IndexedDB database, but not while the model is held', async () => {
    const r = await load({ url: URL_, retry: fast });
    // Held by this load: refused, typed, nothing deleted.
    const busy = await deleteCachedModel(URL_).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(InUseError);
    expect((busy as Error).message).toMatch(/not deleted, it is in use by a tab or worker of this origin/);
    expect(await dbNames()).toContain(modelDbName(hash));
    await expectTensorsEqual(r.files);
    expect(await dbNames()).toContain(modelDbName(hash));
    expect((await listCachedModels()).find((m) => m.manifestHash === hash)).toMatchObject({ complete: true, bytes: totalBytes(), url: new URL(URL_, location.href).href });
    const usage = await storageUsage();
    expect(usage.usedBytes).toBeGreaterThan(0);
    expect(usage.quotaBytes).toBeGreaterThan(usage.usedBytes);

    expect(await forget(URL_)).toEqual([hash]);
    expect(await dbNames()).not.toContain(modelDbName(hash));
    expect((await listCachedModels()).find((m) => m.manifestHash === hash)).toBeUndefined();
    const err = await load({ url: URL_, offline: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
  });
});

describe('uploadModel', () => {
  it('streams shards into GPU buffers whose bytes equal the shard bytes, splitting large tensors', async () => {
    const gpu = await getGpu();
    const { files } = await load({ url: URL_, retry: fast });
    const events: LoadProgress[] = [];
    // 100 kB binding limit: the 384 kB embedding (split over 4 shards at odd bytes) becomes row parts.
    const w = await uploadModel(files, gpu, { maxBindingBytes: 100_000, onProgress: (e) => events.push(e), progressIntervalMs: 0 });
    try {
      for (const t of fx.manifest.tensors) {
        const g = w.get(t.name);
        expect(g.dtype).toBe(t.dtype);
        expect(g.shape).toEqual(t.shape);
        for (const which of ['data', 'scales'] as const) {
          const segs = which === 'data' ? t.data : t.quant?.scales;
          if (!segs) {
            expect(g.parts.every((p) => p.scales === undefined)).toBe(true);
            continue;
          }
          // Expected: the tensor's segments cut straight out of the shard files.
          const want = new Uint8Array(segs.reduce((a, s) => a + s.byteLength, 0));
          let at = 0;
          for (const s of segs) {
            want.set(shardBytes(s.shard).subarray(s.offset, s.offset + s.byteLength), at);
            at += s.byteLength;
          }
          const got = new Uint8Array(want.byteLength);
          at = 0;
          for (const p of g.parts) {
            const n = which === 'data' ? p.dataBytes : p.scalesBytes;
            got.set(new Uint8Array(await readBuffer(gpu, which === 'data' ? p.data : p.scales!, 0, n)), at);
            at += n;
          }
          expect(at).toBe(want.byteLength);
          expect(diffAt(got, want), `${t.name} ${which}`).toBe(-1);
        }
      }
      const emb = w.get('language_model.model.embed_tokens.weight');
      expect(emb.parts.length).toBe(4);
      expect(emb.parts.every((p) => p.dataBytes <= 100_000)).toBe(true);
      expect(emb.parts.map((p) => p.rowStart)).toEqual([0, 260, 520, 780]);
      expect(w.get('language_model.lm_head.weight').parts.length).toBe(1);
      for (let i = 1; i < events.length; i++) expect(events[i]!.loadedBytes).toBeGreaterThanOrEqual(events[i - 1]!.loadedBytes);
      expect(events.some((e) => e.phase === 'upload')).toBe(true);
      expect(events.at(-1)).toMatchObject({ phase: 'done', loadedBytes: w.byteLength });
    } finally {
      w.destroy();
    }
  });

  it('hashes once: a later load trusts the cache; verify: true re-hashes, drops a corrupted shard and refetches only it', async () => {
    const gpu = await getGpu();
    await load({ url: URL_, retry: fast });
    const key = 'shard:shard-00002.bin';
    const stored = await rawIdb<{ blob: Blob; byteLength: number; sha256: string }>(modelDbName(hash), 'readonly', (s) => s.get(key));
    const bad = new Uint8Array(await stored.blob.arrayBuffer());
    bad[12345]! ^= 1;
    await rawIdb(modelDbName(hash), 'readwrite', (s) => s.put({ ...stored, blob: new Blob([bad]) }, key));

    // Default: what was verified when stored is trusted (same size and recorded hash): no
    // re-hash, so the altered byte reaches the GPU unnoticed. This is the documented policy.
    const trusting = traced();
    const { files } = await load({ url: URL_, fetch: trusting.fetch, retry: fast });
    expect(trusting.calls).toEqual(['manifest.json']);
    expect(diffAt(await files.readShard(2), bad)).toBe(-1);
    const w = await uploadModel(files, gpu);
    w.destroy();

    // verify: true re-hashes every cached file at load, deletes the bad one and refetches it alone.
    const t = traced();
    const r = await load({ url: URL_, fetch: t.fetch, retry: fast, verify: true });
    expect(t.calls.sort()).toEqual(['manifest.json', 'shard-00002.bin']);
    expect(r.downloaded).toEqual(['shard-00002.bin']);
    await expectTensorsEqual(r.files);
    expect(diffAt(await r.files.readShard(2), shardBytes(2))).toBe(-1);
  });
});
