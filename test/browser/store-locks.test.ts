/**
 * Two contexts of one origin (two module workers of the test page, each with its own IndexedDB
 * connections and Web Locks client, as two tabs would be) loading the same model over real
 * HTTP: the second waits for the first one's download and loads from IndexedDB (the fixture
 * server's own request log shows each file fetched once), both read the right bytes, and a
 * delete from one while the other holds the model is refused with InUseError and loses nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InUseError, reviveError, type SerializedError } from '../../src/errors.js';
import { Engine } from '../../src/engine/index.js';
import { deleteCachedModel, sha256Hex, type CachedModelInfo } from '../../src/weights/index.js';
import { downloadLockName } from '../../src/weights/locks.js';
import { buildStoreFixture, STORE_FIXTURE_URL, type StoreFixture } from './store-fixture-data.js';
import { ensureServed, serverLog, serveRenamedCopy } from './store-serve.js';

class Context {
  private readonly worker = new Worker(new URL('./store-locks-worker.ts', import.meta.url), { type: 'module' });
  private next = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  readonly events: string[] = [];
  private readonly listeners: (() => void)[] = [];

  constructor() {
    this.worker.onmessage = (ev: MessageEvent<{ id?: number; ok?: boolean; result?: unknown; error?: SerializedError; event?: string }>) => {
      const m = ev.data;
      if (m.event) {
        this.events.push(m.event);
        for (const l of this.listeners.splice(0)) l();
        return;
      }
      const p = this.pending.get(m.id!)!;
      this.pending.delete(m.id!);
      if (m.ok) p.resolve(m.result);
      else p.reject(reviveError(m.error!));
    };
  }

  call<T>(msg: Record<string, unknown>): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  /** Resolves once the worker has posted `event`. */
  async until(event: string): Promise<void> {
    while (!this.events.includes(event)) await new Promise<void>((r) => this.listeners.push(r));
  }

  terminate(): void {
    this.worker.terminate();
  }
}

let fx: StoreFixture;
let hash: string;
const contexts: Context[] = [];

beforeAll(async () => {
  fx = await buildStoreFixture();
  hash = await sha256Hex(fx.files.get('manifest.json')!);
  await ensureServed(fx);
  await deleteCachedModel(STORE_FIXTURE_URL);
});

afterAll(async () => {
  for (const c of contexts) c.terminate();
  await deleteCachedModel(STORE_FIXTURE_URL).catch(() => {});
});

describe('two contexts of one origin (Web Locks)', () => {
  it('one download for both, both load, a delete while the other holds the model is refused and loses nothing', async () => {
    const a = new Context();
    const b = new Context();
    contexts.push(a, b);
    // A query unique to this run marks its requests in the server's log (and is kept on every file).
    const run = `run=${crypto.randomUUID()}`;
    const url = `${STORE_FIXTURE_URL}?${run}`;

    // A starts downloading and is held at its first shard request.
    const loadA = a.call<{ fromCache: boolean; downloaded: string[]; manifestHash: string }>({ op: 'load', url, gate: true });
    await a.until('downloading');
    // B starts while A is downloading: it must queue on the model's download lock.
    const loadB = b.call<{ fromCache: boolean; downloaded: string[]; manifestHash: string }>({ op: 'load', url });
    let queued = false;
    for (let i = 0; i < 500 && !queued; i++) {
      queued = !!(await navigator.locks.query()).pending?.some((l) => l.name === downloadLockName(hash));
      if (!queued) await new Promise((r) => setTimeout(r, 20));
    }
    expect(queued, "B waits on the model's download lock").toBe(true);
    await a.call({ op: 'go' });
    const [ra, rb] = await Promise.all([loadA, loadB]);
    expect(ra).toEqual({ fromCache: false, downloaded: [...fx.manifest.shards.map((s) => s.name), 'tekken.json'], manifestHash: hash });
    expect(rb).toEqual({ fromCache: true, downloaded: [], manifestHash: hash });

    // At the server: the manifest once per context, every other file exactly once.
    const log = (await serverLog()).filter((u) => u.endsWith(run)).map((u) => u.slice(STORE_FIXTURE_URL.length, u.indexOf('?')));
    const count = (n: string) => log.filter((x) => x === n).length;
    expect(count('manifest.json')).toBe(2);
    for (const n of [...fx.manifest.shards.map((s) => s.name), 'tekken.json']) expect(count(n), n).toBe(1);

    // Both read the right bytes from IndexedDB.
    const want = fx.manifest.shards.map((s) => s.sha256);
    expect(await a.call<string[]>({ op: 'hashes' })).toEqual(want);
    expect(await b.call<string[]>({ op: 'hashes' })).toEqual(want);

    // A lets go and deletes; B still holds the model: refused, typed, nothing lost.
    await a.call({ op: 'release' });
    const refused = await a.call({ op: 'delete', url: STORE_FIXTURE_URL }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InUseError);
    expect((refused as Error).message).toMatch(/not deleted, it is in use by a tab or worker of this origin/);
    const listed = (await a.call<CachedModelInfo[]>({ op: 'list' })).find((m) => m.manifestHash === hash);
    expect(listed).toMatchObject({ complete: true, bytes: fx.manifest.totalBytes + fx.files.get('tekken.json')!.byteLength });
    expect(await b.call<string[]>({ op: 'hashes' })).toEqual(want);

    // Once B lets go too, the delete goes through.
    await b.call({ op: 'release' });
    expect(await a.call({ op: 'delete', url: STORE_FIXTURE_URL })).toEqual([hash]);
    expect((await b.call<CachedModelInfo[]>({ op: 'list' })).some((m) => m.manifestHash === hash)).toBe(false);
  });

  it("the engine holds the model while loaded and lets go on dispose, or when its load fails", async () => {
    // A real converted model (test/global-setup.ts), copied under its own manifest hash: golden
    // tests hold the original for the whole run.
    const url = await serveRenamedCopy('/scratch/models/pixtral-tiny-a-f32/', 'store-engine-model', `engine lock test ${crypto.randomUUID()}`);
    const engine = new Engine();
    await engine.load({ url, maxContext: 64 });
    const refused = await deleteCachedModel(url).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InUseError);
    await engine.dispose();
    expect((await deleteCachedModel(url)).length).toBe(1);

    // The store fixture's files load, but its tensors are not a model: the failed load lets go too.
    const broken = new Engine();
    await expect(broken.load({ url: STORE_FIXTURE_URL })).rejects.toThrow();
    expect(await deleteCachedModel(STORE_FIXTURE_URL)).toEqual([hash]);
    await broken.dispose();
  });
});
