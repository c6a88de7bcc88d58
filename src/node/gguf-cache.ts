/**
 * Node's disk cache (`cache.ts`) as the GGUF cache's backend (`src/gguf/cache.ts`): a pair
 * version is a folder `<cache>/models/<version key>/` beside the converted models, with the same
 * `source.json` (so `listDiskCache` lists it and `deleteDiskCached(textUrl)` deletes it) plus:
 *
 * - `gguf-pair.json`: the pair's manifest (URLs, sizes, stated SHA-256s, chunk size, quant mix);
 * - `text.gguf`, `mmproj.gguf`: the files themselves, each chunk written at its offset (a
 *   complete one is a plain GGUF that llama.cpp can open too);
 * - `<role>.chunks.json`: the SHA-256 of each chunk written (a chunk counts as stored only once
 *   its hash is recorded there, after its bytes are written), `<role>.verified`: the whole
 *   file's SHA-256 once it was checked.
 *
 * Processes sharing the cache are coordinated by lock files (`locks.ts`): one downloads a version
 * while the others wait for it, and a version some process holds is not pruned or deleted.
 */
import { mkdir, open, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QuotaError } from '../errors.js';
import type { ChunkStore, GgufRole } from '../gguf/chunks.js';
import type { GgufCacheBackend, GgufCacheVersion, GgufPairManifest } from '../gguf/cache.js';
import { quotaMargin } from '../weights/quota.js';
import { defaultCacheDir, listDiskCache } from './cache.js';
import { diskLocks } from './locks.js';

const MANIFEST = 'gguf-pair.json';

/** Serialises the read-modify-write of one `chunks.json` (chunks of a file arrive concurrently). */
const pending = new Map<string, Promise<unknown>>();
function serial<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const run = (pending.get(path) ?? Promise.resolve()).then(fn, fn);
  pending.set(path, run.catch(() => {}));
  return run;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Writes a small file whole or not at all (a crash leaves the old one). */
async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

function chunkStore(dir: string, role: GgufRole, chunkBytes: () => Promise<number>): ChunkStore {
  const data = join(dir, `${role}.gguf`);
  const hashes = join(dir, `${role}.chunks.json`);
  const verified = join(dir, `${role}.verified`);
  const table = async () => (await readJson<Record<string, string>>(hashes)) ?? {};
  return {
    async recorded() {
      return new Map(Object.entries(await table()).map(([k, v]) => [Number(k), v]));
    },
    async read(i) {
      const size = await chunkBytes();
      const fh = await open(data, 'r').catch(() => null);
      if (!fh) return undefined;
      try {
        const buf = new Uint8Array(size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await fh.read(buf, got, size - got, i * size + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      } finally {
        await fh.close();
      }
    },
    async write(i, bytes, sha256) {
      const size = await chunkBytes();
      // 'a+' creates the file without truncating it; positioned writes need 'r+'.
      await (await open(data, 'a+')).close();
      const fh = await open(data, 'r+');
      try {
        await fh.write(bytes, 0, bytes.byteLength, i * size);
      } finally {
        await fh.close();
      }
      await serial(hashes, async () => writeAtomic(hashes, JSON.stringify({ ...(await table()), [i]: sha256 })));
    },
    remove: (i) =>
      serial(hashes, async () => {
        const t = await table();
        delete t[i];
        await writeAtomic(hashes, JSON.stringify(t));
      }),
    verified: async () => (await readFile(verified, 'utf8').catch(() => '')).trim() || undefined,
    markVerified: (sha256) => writeAtomic(verified, sha256),
    async clear() {
      await rm(verified, { force: true });
      await serial(hashes, () => rm(hashes, { force: true }));
      await rm(data, { force: true });
    },
  };
}

/** The disk backend over `cacheDir` (default `defaultCacheDir()`). */
export function diskGgufCache(cacheDir = defaultCacheDir()): GgufCacheBackend {
  const root = join(cacheDir, 'models');
  const locks = diskLocks(cacheDir);
  const dirOf = (key: string) => join(root, key);
  const chunkBytesOf = (key: string) => async () => (await readJson<GgufPairManifest>(join(dirOf(key), MANIFEST)))!.chunkBytes;
  const record = (key: string, m: GgufPairManifest, complete: boolean, storedAt = Date.now()) =>
    writeAtomic(join(dirOf(key), 'source.json'), `${JSON.stringify({ url: m.files.text.url, mmproj: m.files.mmproj.url, kind: 'gguf', name: m.name, storedAt, complete, quantMix: m.quantMix })}\n`);
  return {
    where: `the disk cache (${root})`,
    async versions(url, mmproj) {
      const out: GgufCacheVersion[] = [];
      for (const e of await listDiskCache(cacheDir)) {
        if (e.kind !== 'gguf' || e.url !== url || e.mmproj !== mmproj) continue;
        const manifest = await readJson<GgufPairManifest>(join(e.dir, MANIFEST));
        if (!manifest) continue;
        const marks = await Promise.all((['text', 'mmproj'] as const).map((r) => readFile(join(e.dir, `${r}.verified`), 'utf8').catch(() => null)));
        out.push({ key: e.manifestHash, manifest, complete: marks.every((m) => !!m), storedAt: e.storedAt });
      }
      return out;
    },
    async create(key, m) {
      const dir = dirOf(key);
      if (await readJson(join(dir, MANIFEST))) return;
      await mkdir(dir, { recursive: true });
      await writeAtomic(join(dir, MANIFEST), JSON.stringify(m));
      await record(key, m, false);
    },
    chunks: (key, role) => chunkStore(dirOf(key), role, chunkBytesOf(key)),
    async markComplete(key) {
      const m = (await readJson<GgufPairManifest>(join(dirOf(key), MANIFEST)))!;
      const prev = await readJson<{ storedAt: number }>(join(dirOf(key), 'source.json'));
      await record(key, m, true, prev?.storedAt);
    },
    async checkRoom(_key, bytes) {
      await mkdir(root, { recursive: true });
      let free: number;
      try {
        const s = await statfs(root);
        free = s.bavail * s.bsize;
      } catch (e) {
        return `the free disk space of ${root} is unknown (${(e as Error).message}): downloading without a space check`;
      }
      const needed = bytes <= 0 ? 0 : bytes + quotaMargin(bytes);
      if (needed > free) throw new QuotaError(needed, free, `the disk of ${root} is too full for the GGUF pair`);
      return undefined;
    },
    hold: (key, signal) => locks.hold(key, signal),
    whileDownloading: (key, signal, fn) => locks.whileDownloading(key, signal, fn),
    async pruneOthers(url, mmproj, keep) {
      for (const e of await listDiskCache(cacheDir)) {
        if (e.kind !== 'gguf' || e.url !== url || e.mmproj !== mmproj || e.manifestHash === keep) continue;
        if (!(await locks.inUse(e.manifestHash))) await rm(e.dir, { recursive: true, force: true });
      }
    },
  };
}

