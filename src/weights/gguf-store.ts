/**
 * The browser's IndexedDB cache (`store.ts`) as the GGUF cache's backend (`src/gguf/cache.ts`):
 * a pair version is a model database like a converted model's, registered with `kind: 'gguf'`,
 * so `listCachedModels` lists it (size, quant mix), `deleteCachedModel` deletes it and the Web
 * Locks of `locks.ts` keep other tabs from deleting it while it is loaded or downloading.
 * Each chunk is one `StoredFile` written in its own transaction (all there or absent).
 */
import { QuotaError } from '../errors.js';
import type { ChunkStore, GgufRole } from '../gguf/chunks.js';
import type { GgufCacheBackend, GgufCacheVersion, GgufPairManifest } from '../gguf/cache.js';
import { holdModel, ifUnused, whileDownloading } from './locks.js';
import { checkQuota, defaultStorage, estimateStorage, freeBytes, type StorageLike } from './quota.js';
import {
  allRecords, deleteFile, deleteModel, entriesWithPrefix, getEntry, getManifestBytes, getRecord, putEntry, putManifestBytes, putRecord, type StoredFile,
} from './store.js';

const chunkKey = (role: GgufRole, i: number) => `chunk:${role}:${i}`;
const verifiedKey = (role: GgufRole) => `verified:${role}`;

/** A write the browser refused for lack of room, as QuotaError (other errors as they are). */
async function writeError(e: unknown, bytes: number, storage: StorageLike | null): Promise<unknown> {
  const name = (e as { name?: string })?.name;
  if (name !== 'QuotaExceededError') return e;
  const est = await estimateStorage(storage);
  return new QuotaError(bytes, 'est' in est ? freeBytes(est.est) : null, `the browser refused a write (${(e as Error).message ?? name})`);
}

function chunkStore(hash: string, role: GgufRole, storage: StorageLike | null): ChunkStore {
  const prefix = `chunk:${role}:`;
  return {
    async recorded() {
      const out = new Map<number, string>();
      for (const [k, f] of await entriesWithPrefix<StoredFile>(hash, prefix)) {
        if (f && f.blob instanceof Blob && f.blob.size === f.byteLength) out.set(Number(k.slice(prefix.length)), f.sha256);
      }
      return out;
    },
    async read(i) {
      const f = await getEntry<StoredFile>(hash, chunkKey(role, i));
      return f?.blob instanceof Blob ? new Uint8Array(await f.blob.arrayBuffer()) : undefined;
    },
    async write(i, bytes, sha256) {
      const value: StoredFile = { blob: new Blob([bytes as Uint8Array<ArrayBuffer>]), byteLength: bytes.byteLength, sha256, storedAt: Date.now() };
      try {
        await putEntry(hash, chunkKey(role, i), value);
      } catch (e) {
        throw await writeError(e, bytes.byteLength, storage);
      }
    },
    remove: (i) => deleteFile(hash, chunkKey(role, i)),
    verified: () => getEntry<string>(hash, verifiedKey(role)),
    markVerified: (sha256) => putEntry(hash, verifiedKey(role), sha256),
    async clear() {
      await deleteFile(hash, verifiedKey(role));
      for (const [k] of await entriesWithPrefix(hash, prefix)) await deleteFile(hash, k);
    },
  };
}

/** The IndexedDB backend; `storage` replaces `navigator.storage` (quota estimate, persist). */
export function idbGgufCache(opts: { storage?: StorageLike | null } = {}): GgufCacheBackend {
  const storage = opts.storage === undefined ? defaultStorage() : opts.storage;
  return {
    where: 'the IndexedDB cache',
    async versions(url, mmproj) {
      const out: GgufCacheVersion[] = [];
      for (const rec of await allRecords()) {
        if (rec.kind !== 'gguf' || rec.url !== url || rec.mmproj !== mmproj) continue;
        const mb = await getManifestBytes(rec.manifestHash).catch(() => undefined);
        if (!mb) continue;
        let manifest: GgufPairManifest;
        try {
          manifest = JSON.parse(new TextDecoder().decode(mb)) as GgufPairManifest;
        } catch {
          continue; // unreadable: never reused, deleted by a later prune
        }
        const marks = await Promise.all((['text', 'mmproj'] as const).map((r) => getEntry<string>(rec.manifestHash, verifiedKey(r))));
        out.push({ key: rec.manifestHash, manifest, complete: marks.every((m) => typeof m === 'string'), storedAt: rec.storedAt });
      }
      return out.sort((a, b) => b.storedAt - a.storedAt);
    },
    async create(key, m) {
      if ((await getRecord(key)) && (await getManifestBytes(key))) return;
      const total = m.files.text.byteLength + m.files.mmproj.byteLength;
      try {
        await putRecord({ url: m.files.text.url, mmproj: m.files.mmproj.url, kind: 'gguf', name: m.name, manifestHash: key, totalBytes: total, storedAt: Date.now() });
        await putManifestBytes(key, new TextEncoder().encode(JSON.stringify(m)));
      } catch (e) {
        throw await writeError(e, total, storage);
      }
      if (storage?.persist) await storage.persist().catch(() => false);
    },
    chunks: (key, role) => chunkStore(key, role, storage),
    async markComplete() {
      /* complete = both files' `verified:` marks, written by the download itself */
    },
    async checkRoom(_key, bytes) {
      const est = await estimateStorage(storage);
      if (!('est' in est)) return `${est.unavailable}: downloading without a storage quota check`;
      const q = checkQuota(bytes, est.est);
      if (!q.ok) throw new QuotaError(q.neededBytes, q.availableBytes);
      return undefined;
    },
    hold: (key, signal) => holdModel(key, signal),
    whileDownloading: (key, signal, fn) => whileDownloading(key, signal, fn),
    async pruneOthers(url, mmproj, keep) {
      for (const rec of await allRecords()) {
        if (rec.kind === 'gguf' && rec.url === url && rec.mmproj === mmproj && rec.manifestHash !== keep) await ifUnused(rec.manifestHash, () => deleteModel(rec.manifestHash));
      }
    },
  };
}
