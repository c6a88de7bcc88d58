/**
 * GGUF pairs through the IndexedDB cache in real Chromium: the `kq` files served over real HTTP
 * by the fixture server (Range requests, the file's SHA-256 as ETag, `?etag=` to send a wrong one
 * or none), real IndexedDB, real WebGPU. Downloaded once in chunks, then loaded with no weight
 * byte fetched (requests counted at the server), offline too; resumed mid-file after an abort;
 * a wrong ETag refused with IntegrityError and nothing kept; a tampered stored chunk refetched
 * online and refused offline; the quota checked before any write; listed and deleted with the
 * converted models (not while a loaded model holds it). Each test uses its own text variant, so no test depends on another's cache.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadPixtral } from '../../src/index.js';
import { Engine, type GenerateRequest } from '../../src/engine/index.js';
import { AbortError, InUseError, IntegrityError, NetworkError, QuotaError } from '../../src/errors.js';
import { openGgufPair } from '../../src/gguf/cache.js';
import { idbGgufCache } from '../../src/weights/gguf-store.js';
import { deleteCachedModel, listCachedModels, modelDbName, type LoadProgress } from '../../src/weights/index.js';
import type { StoredFile } from '../../src/weights/store.js';
import { loadCase } from '../golden/cases.js';
import { serverLog } from './store-serve.js';

const kq = '/shared/fixtures/gguf/kq';
const mmproj = `${kq}/pixtral-kq-tiny-mmproj-f16.gguf`;
const text = (variant: string) => `${kq}/pixtral-kq-tiny-text-${variant}.gguf`;
/** Small chunks, so the 1.7-2.9 MB fixtures span several and a resume happens mid-file. */
const CHUNK = 256 << 10;
const abs = (u: string) => new URL(u, location.href).href;

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.dispose();
});
async function freshEngine(): Promise<Engine> {
  const e = new Engine();
  engines.push(e);
  return e;
}

/** Removes every cached version of the variant's pair (a clean start whatever ran before). */
async function forget(variant: string): Promise<void> {
  await deleteCachedModel(abs(text(variant)));
}

/** Server requests for a path (any query) since `from` entries of the log. */
async function requestsFor(path: string, from: number): Promise<number> {
  return (await serverLog()).slice(from).filter((r) => r.split('?')[0] === path).length;
}

/** A fetch that sums the body bytes the server sent for `.gguf` ranges. */
function counting() {
  const c = { bytes: 0, fetch: (async (input, init) => {
    const res = await fetch(input, init);
    if (!String(input).includes('.gguf')) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    c.bytes += body.byteLength;
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }) as typeof fetch };
  return c;
}

async function greedyOk(generate: (r: GenerateRequest) => Promise<{ tokenIds: number[] }>, variant: string): Promise<void> {
  const c = await loadCase(`gguf/kq/goldens/${variant}`, 'text_only');
  const r = await generate({ inputIds: c.json.input_ids, maxNewTokens: 8, temperature: 0 });
  expect(r.tokenIds, `${variant} text_only greedy`).toEqual(c.json.greedy_tokens);
}

/**
 * One request on a version's own database through a connection of its own, closed at once (an
 * open connection would block the cache's later deletes of that database).
 */
async function onDb<T>(hash: string, fn: (os: IDBObjectStore) => IDBRequest<T>, mode: IDBTransactionMode = 'readonly'): Promise<T> {
  const db = await new Promise<IDBDatabase>((ok, fail) => {
    const r = indexedDB.open(modelDbName(hash));
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
  try {
    return await new Promise<T>((ok, fail) => {
      const req = fn(db.transaction('files', mode).objectStore('files'));
      req.onsuccess = () => ok(req.result);
      req.onerror = () => fail(req.error);
    });
  } finally {
    db.close();
  }
}

async function versionOf(variant: string) {
  return (await listCachedModels()).find((m) => m.kind === 'gguf' && m.url === abs(text(variant)));
}

describe('GGUF pairs in the IndexedDB cache', () => {
  it('downloads once in chunks; a second loadPixtral fetches no weight byte; listed with its quant mix; deleted', async () => {
    await forget('q4_k_m');
    const size = (await (await fetch(text('q4_k_m'))).arrayBuffer()).byteLength;
    let from = (await serverLog()).length;
    const first = await loadPixtral({ url: text('q4_k_m'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK });
    try {
      expect(first.info.fromCache).toBe(false);
      await greedyOk((r) => first.generate(r), 'q4_k_m');
    } finally {
      await first.dispose();
    }
    // One probe, a few header reads (256 KiB, then doubling), one request per chunk: not one per tensor.
    const firstRequests = await requestsFor(text('q4_k_m'), from);
    expect(firstRequests).toBeLessThanOrEqual(1 + 4 + Math.ceil(size / CHUNK));

    const listed = await versionOf('q4_k_m');
    expect(listed).toMatchObject({ kind: 'gguf', mmproj: abs(mmproj), complete: true, name: 'pixtral-kq-tiny' });
    expect(listed!.bytes).toBe(listed!.totalBytes);
    expect(Object.keys(listed!.quantMix!)).toEqual(expect.arrayContaining(['Q4_K', 'F32']));

    from = (await serverLog()).length;
    const second = await loadPixtral({ url: text('q4_k_m'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK });
    try {
      expect(second.info.fromCache).toBe(true);
      await greedyOk((r) => second.generate(r), 'q4_k_m');
    } finally {
      await second.dispose();
    }
    // Only the one-byte probe per file (size and ETag: is the cached version still current?).
    expect(await requestsFor(text('q4_k_m'), from)).toBe(1);
    expect(await requestsFor(mmproj, from)).toBe(1);

    expect(await deleteCachedModel(abs(text('q4_k_m')))).toHaveLength(1);
    expect(await versionOf('q4_k_m')).toBeUndefined();
  });

  it('loads offline and when the network fails, with no request at all', async () => {
    await forget('q6_k');
    const e = await freshEngine();
    await e.load({ url: text('q6_k'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK });
    const from = (await serverLog()).length;
    const off = await freshEngine();
    const info = await off.load({ url: text('q6_k'), mmproj, maxContext: 64, kvCache: 'f32', offline: true });
    expect(info.fromCache).toBe(true);
    await greedyOk((r) => off.generate(r), 'q6_k');
    const down: typeof fetch = async () => {
      throw new TypeError('Failed to fetch');
    };
    const failing = await freshEngine();
    // Retried with backoff like any download (~8 s), then the cache.
    await failing.load({ url: text('q6_k'), mmproj, maxContext: 64, kvCache: 'f32', fetch: down });
    await greedyOk((r) => failing.generate(r), 'q6_k');
    expect(await requestsFor(text('q6_k'), from)).toBe(0);
    // A pair never downloaded is a NetworkError offline, naming it.
    await forget('q4_0');
    await expect((await freshEngine()).load({ url: text('q4_0'), mmproj, offline: true })).rejects.toThrow(NetworkError);
    // Held by loaded models (Web Locks): not deleted; once they are released, deleted.
    await expect(deleteCachedModel(abs(text('q6_k')))).rejects.toThrow(InUseError);
    for (const x of engines.splice(0)) await x.dispose();
    expect(await deleteCachedModel(abs(text('q6_k')))).toHaveLength(1);
  });

  it('resumes an aborted download mid-file: fewer bytes the second time, the same result', async () => {
    await forget('q5_k_m');
    const total = (await (await fetch(text('q5_k_m'))).arrayBuffer()).byteLength + (await (await fetch(mmproj)).arrayBuffer()).byteLength;
    const stop = new AbortController();
    const firstFetch = counting();
    const events: LoadProgress[] = [];
    const e = await freshEngine();
    const aborted = e.load({ url: text('q5_k_m'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK, fetch: firstFetch.fetch }, (p) => {
      events.push(p);
      if (p.phase === 'download' && p.loadedBytes > total * 0.4) stop.abort();
    }, stop.signal);
    await expect(aborted).rejects.toThrow(AbortError);
    const partial = await versionOf('q5_k_m');
    expect(partial?.complete).toBe(false);
    expect(partial!.bytes).toBeGreaterThan(0);
    expect(partial!.bytes).toBeLessThan(total);
    // Progress carried a rate and an ETA while downloading.
    expect(events.some((p) => p.phase === 'download' && p.bytesPerSecond > 0 && typeof p.etaSeconds === 'number')).toBe(true);

    const again = counting();
    const r = await freshEngine();
    const info = await r.load({ url: text('q5_k_m'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK, fetch: again.fetch });
    expect(info.fromCache).toBe(false);
    // The chunks not stored, plus both headers read again (256 KiB each here) and two 1-byte probes.
    expect(again.bytes).toBeLessThanOrEqual(total - partial!.bytes + (512 << 10) + 2);
    expect(again.bytes).toBeLessThan(total);
    await greedyOk((q) => r.generate(q), 'q5_k_m');
    expect((await versionOf('q5_k_m'))?.complete).toBe(true);
  });

  it('a wrong ETag is an IntegrityError and nothing of the file is kept', async () => {
    await forget('q4_k_s');
    const e = await freshEngine();
    await expect(e.load({ url: `${text('q4_k_s')}?etag=wrong`, mmproj, ggufChunkBytes: CHUNK })).rejects.toThrow(IntegrityError);
    await expect(e.load({ url: `${text('q4_k_s')}?etag=wrong`, mmproj, ggufChunkBytes: CHUNK })).rejects.toThrow(/SHA-256 is [0-9a-f]{64}, the server states 0123456789abcdef/);
    const v = await versionOf('q4_k_s');
    expect(v?.complete).toBe(false);
    const keys = await onDb(v!.manifestHash, (os) => os.getAllKeys());
    expect(keys.filter((k) => String(k).startsWith('chunk:text:'))).toEqual([]);
    expect(keys.filter((k) => String(k).startsWith('chunk:mmproj:')).length).toBeGreaterThan(0);
    // The right ETag: a new version, loaded and checked; the broken one is pruned.
    await e.load({ url: text('q4_k_s'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK });
    await greedyOk((q) => e.generate(q), 'q4_k_s');
    expect((await listCachedModels()).filter((m) => m.url === abs(text('q4_k_s')))).toHaveLength(1);
  });

  it('a tampered stored chunk: fetched again online, refused offline', async () => {
    await forget('q8_0');
    const e = await freshEngine();
    await e.load({ url: text('q8_0'), mmproj, maxContext: 64, kvCache: 'f32', ggufChunkBytes: CHUNK });
    await e.dispose();
    const v = (await versionOf('q8_0'))!;
    const tamper = async () => {
      const old = (await onDb(v.manifestHash, (os) => os.get('chunk:text:3'))) as StoredFile;
      const b = new Uint8Array(await old.blob.arrayBuffer());
      b[100] = b[100]! ^ 0xff;
      // The recorded hash kept: only the bytes lie.
      await onDb(v.manifestHash, (os) => os.put({ ...old, blob: new Blob([b]) }, 'chunk:text:3'), 'readwrite');
    };
    await tamper();
    const from = (await serverLog()).length;
    const online = await freshEngine();
    await online.load({ url: text('q8_0'), mmproj, maxContext: 64, kvCache: 'f32' });
    await greedyOk((q) => online.generate(q), 'q8_0');
    expect(await requestsFor(text('q8_0'), from)).toBe(2); // the probe and chunk 3 again
    await online.dispose();

    await tamper();
    const offline = await freshEngine();
    await expect(offline.load({ url: text('q8_0'), mmproj, offline: true })).rejects.toThrow(/cached chunk 3 \(bytes 786432-1048575\) is damaged/);
    // It was dropped: offline it is now only partly cached; online it is fetched again.
    await expect(offline.load({ url: text('q8_0'), mmproj, offline: true })).rejects.toThrow(NetworkError);
    await offline.load({ url: text('q8_0'), mmproj, maxContext: 64, kvCache: 'f32' });
    await greedyOk((q) => offline.generate(q), 'q8_0');
  });

  it('says so when the server states no SHA-256; reads it from X-Linked-Etag', async () => {
    await forget('f16');
    const events: LoadProgress[] = [];
    const e = await freshEngine();
    await e.load({ url: `${text('f16')}?etag=none`, mmproj: `${mmproj}?etag=linked`, maxContext: 64, kvCache: 'f32', ggufChunkBytes: 1 << 20 }, (p) => events.push(p));
    const flagged = events.filter((p) => p.noFileHash);
    expect(flagged.map((p) => p.noFileHash)).toEqual([abs(text('f16'))]);
    expect(flagged[0]!.warning).toMatch(/states no SHA-256/);
    await greedyOk((q) => e.generate(q), 'f16');
  });

  it('checks the quota from the sizes before writing anything', async () => {
    await forget('q4_0');
    const tiny = { estimate: async () => ({ quota: 20 << 20, usage: 19 << 20 }) };
    await expect(openGgufPair(idbGgufCache({ storage: tiny }), { url: text('q4_0'), mmproj, chunkBytes: CHUNK })).rejects.toThrow(QuotaError);
    const v = await versionOf('q4_0');
    expect(v?.bytes ?? 0).toBe(0);
  });
});
