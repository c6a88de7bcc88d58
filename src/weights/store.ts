/**
 * The IndexedDB cache of converted models (through `idb-keyval`).
 *
 * Layout:
 * - one database per model, `pixtral-webgpu-model-<manifestHash>` (manifestHash = SHA-256 of the
 *   manifest.json bytes, so a re-converted model never mixes with an old one), object store
 *   `files`, keys `manifest` (the raw manifest.json bytes), `shard:<shard name>` and
 *   `file:<tokenizer file>`, each file stored as a `StoredFile` ({ blob, byteLength, sha256 })
 *   in its own transaction, so a file is either entirely there or absent;
 * - a registry database `pixtral-webgpu-registry` (store `models`, key manifestHash) holding a
 *   small `ModelRecord` per model, so a later visit finds the model by URL with no network.
 *
 * A llama.cpp GGUF pair is cached the same way (`gguf-store.ts`): a registry record with `kind`
 * `gguf` (its `url` the text file's, `mmproj` the other's), its database holding the pair's
 * manifest (`src/gguf/cache.ts`) and each file's chunks (`chunk:<text|mmproj>:<index>`, each a
 * `StoredFile` with the SHA-256 it had when it arrived) and whole-file marks (`verified:<role>`).
 *
 * Verification policy: hash once. Every file (shards and the tokenizer) is SHA-256'd when its
 * bytes arrive from the network and written only if it matches the manifest, together with that
 * hash, in one atomic IndexedDB write. A later load trusts what was verified when stored: its
 * cache check is cheap (entry present, recorded sha256 and length equal the manifest's, Blob size
 * equal), because re-hashing a multi-GB model at each visit costs seconds to minutes. With
 * `loadModelFiles({ verify: true })` every cached file is re-hashed at load time instead, and one
 * that fails is deleted and downloaded again.
 */
import { createStore, del, entries, get, getMany, set, values, type UseStore } from 'idb-keyval';
import { FormatError, InUseError, IntegrityError } from '../errors.js';
import { ifUnused, IN_USE } from './locks.js';
import type { Manifest, Segment, TensorEntry } from './manifest.js';
import { validateManifest } from './manifest.js';
import { sha256Hex } from './hash.js';
import { defaultStorage, type StorageLike } from './quota.js';

export const REGISTRY_DB = 'pixtral-webgpu-registry';
const REGISTRY_STORE = 'models';
const MODEL_STORE = 'files';
const MANIFEST_KEY = 'manifest';

export function modelDbName(manifestHash: string): string {
  return `pixtral-webgpu-model-${manifestHash}`;
}

/** The registry's entry for one cached model. */
export interface ModelRecord {
  /** Normalised base URL the model was first downloaded from (ends with '/'). */
  url: string;
  /** `manifest.name`. */
  name: string;
  manifestHash: string;
  /** Bytes of all files (shards + tokenizer). */
  totalBytes: number;
  /** `Date.now()` when the download started. */
  storedAt: number;
  /** `gguf`: a llama.cpp GGUF pair (`url` is its text file); absent for a converted model. */
  kind?: 'gguf';
  /** A GGUF pair's mmproj URL. */
  mmproj?: string;
}

export interface CachedModelInfo extends ModelRecord {
  /** Bytes currently stored (complete files only). */
  bytes: number;
  /** Every shard and the tokenizer are stored (a GGUF pair: both files, each verified whole). */
  complete: boolean;
  /** A GGUF pair's text file: bytes and tensors per ggml type (e.g. Q4_K, Q6_K, F32). */
  quantMix?: Record<string, { tensors: number; bytes: number }>;
}

/** One file of a model: a shard, or the tokenizer (shardIndex -1). */
export interface ModelFile {
  key: string;
  name: string;
  byteLength: number;
  sha256: string;
  shardIndex: number;
}

export interface StoredFile {
  blob: Blob;
  byteLength: number;
  sha256: string;
  storedAt: number;
}

/** The shards, then the tokenizer file if the manifest has one. */
export function manifestFiles(m: Manifest): ModelFile[] {
  const files: ModelFile[] = m.shards.map((s, i) => ({ key: `shard:${s.name}`, name: s.name, byteLength: s.byteLength, sha256: s.sha256, shardIndex: i }));
  if (m.tokenizer) {
    const t = m.tokenizer;
    files.push({ key: `file:${t.file}`, name: t.file, byteLength: t.byteLength, sha256: t.sha256, shardIndex: -1 });
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Connections. idb-keyval caches one connection per createStore(); we keep one per database and
// close it before deleting the database (deleteDatabase waits for open connections). Another
// tab deleting a model closes ours through `versionchange`.

const stores = new Map<string, UseStore>();

function storeFor(dbName: string, storeName: string): UseStore {
  let s = stores.get(dbName);
  if (s) return s;
  const raw = createStore(dbName, storeName);
  let hooked = false;
  const wrapped: UseStore = (mode, cb) =>
    raw(mode, (os) => {
      if (!hooked) {
        hooked = true;
        const db = os.transaction.db;
        db.onversionchange = () => {
          db.close();
          if (stores.get(dbName) === wrapped) stores.delete(dbName);
        };
      }
      return cb(os);
    });
  stores.set(dbName, wrapped);
  return wrapped;
}

async function closeDb(dbName: string): Promise<void> {
  const s = stores.get(dbName);
  if (!s) return;
  stores.delete(dbName);
  try {
    await s('readonly', (os) => os.transaction.db.close());
  } catch {
    /* already closed */
  }
}

function deleteDb(dbName: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(dbName);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error);
    // onblocked: another tab holds a connection; it receives `versionchange` and closes it
    // (our own connections do), after which the deletion completes.
  });
}

const registry = () => storeFor(REGISTRY_DB, REGISTRY_STORE);
const modelStore = (hash: string) => storeFor(modelDbName(hash), MODEL_STORE);

// ---------------------------------------------------------------------------------------------
// Registry and per-model entries (used by fetch.ts).

export async function getRecord(hash: string): Promise<ModelRecord | undefined> {
  return get<ModelRecord>(hash, registry());
}

export async function putRecord(rec: ModelRecord): Promise<void> {
  await set(rec.manifestHash, rec, registry());
}

export async function allRecords(): Promise<ModelRecord[]> {
  return values<ModelRecord>(registry());
}

export async function putManifestBytes(hash: string, bytes: Uint8Array): Promise<void> {
  await set(MANIFEST_KEY, bytes.slice().buffer, modelStore(hash));
}

export async function getManifestBytes(hash: string): Promise<Uint8Array | undefined> {
  const b = await get<ArrayBuffer>(MANIFEST_KEY, modelStore(hash));
  return b ? new Uint8Array(b) : undefined;
}

export async function putFile(hash: string, file: ModelFile, bytes: Uint8Array): Promise<void> {
  const value: StoredFile = { blob: new Blob([bytes as Uint8Array<ArrayBuffer>]), byteLength: file.byteLength, sha256: file.sha256, storedAt: Date.now() };
  await set(file.key, value, modelStore(hash));
}

export async function deleteFile(hash: string, key: string): Promise<void> {
  await del(key, modelStore(hash));
}

export async function getFile(hash: string, key: string): Promise<StoredFile | undefined> {
  return get<StoredFile>(key, modelStore(hash));
}

/** Any entry of a model's database (the GGUF cache's chunks and marks). */
export async function putEntry(hash: string, key: string, value: unknown): Promise<void> {
  await set(key, value, modelStore(hash));
}

export async function getEntry<T>(hash: string, key: string): Promise<T | undefined> {
  return get<T>(key, modelStore(hash));
}

/** Entries whose key starts with `prefix` (a Blob value is a handle: no bytes are read). */
export async function entriesWithPrefix<T>(hash: string, prefix: string): Promise<[string, T][]> {
  return (await entries<IDBValidKey, T>(modelStore(hash))).filter((e): e is [string, T] => typeof e[0] === 'string' && e[0].startsWith(prefix));
}

function entryValid(f: ModelFile, s: StoredFile | undefined): s is StoredFile {
  return !!s && s.blob instanceof Blob && s.sha256 === f.sha256 && s.byteLength === f.byteLength && s.blob.size === f.byteLength;
}

/**
 * Keys of `files` that are stored and pass the cheap check (see the module comment); with
 * `rehash`, also re-hashes each one (and deletes those that fail).
 */
export async function presentFiles(hash: string, files: ModelFile[], rehash = false): Promise<Set<string>> {
  const got = await getMany<StoredFile>(files.map((f) => f.key), modelStore(hash));
  const ok = new Set<string>();
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const s = got[i];
    if (!entryValid(f, s)) continue;
    if (rehash) {
      let good = false;
      try {
        good = (await sha256Hex(await s.blob.arrayBuffer())) === f.sha256;
      } catch {
        /* unreadable blob (backing file gone): refetch */
      }
      if (!good) {
        await deleteFile(hash, f.key);
        continue;
      }
    }
    ok.add(f.key);
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Public cache management.

/** Every model in the registry with its stored bytes and completeness. */
export async function listCachedModels(): Promise<CachedModelInfo[]> {
  const out: CachedModelInfo[] = [];
  for (const rec of await allRecords()) {
    let bytes = 0;
    let complete = false;
    if (rec.kind === 'gguf') {
      out.push({ ...rec, ...(await ggufListing(rec.manifestHash)) });
      continue;
    }
    const mb = await getManifestBytes(rec.manifestHash).catch(() => undefined);
    if (mb) {
      try {
        const files = manifestFiles(validateManifest(JSON.parse(new TextDecoder().decode(mb))));
        const present = await presentFiles(rec.manifestHash, files);
        for (const f of files) if (present.has(f.key)) bytes += f.byteLength;
        complete = present.size === files.length;
      } catch {
        /* unreadable manifest: listed as incomplete */
      }
    }
    out.push({ ...rec, bytes, complete });
  }
  return out.sort((a, b) => b.storedAt - a.storedAt);
}

/** A cached GGUF pair's stored bytes, completeness and quant mix (see `gguf-store.ts`). */
async function ggufListing(hash: string): Promise<{ bytes: number; complete: boolean; quantMix?: CachedModelInfo['quantMix'] }> {
  try {
    const m = JSON.parse(new TextDecoder().decode((await getManifestBytes(hash))!)) as { quantMix: CachedModelInfo['quantMix'] };
    let bytes = 0;
    for (const [, f] of await entriesWithPrefix<StoredFile>(hash, 'chunk:')) bytes += f.byteLength;
    const verified = await getMany([`verified:text`, `verified:mmproj`], modelStore(hash));
    return { bytes, complete: verified.every((v) => typeof v === 'string'), quantMix: m.quantMix };
  } catch {
    return { bytes: 0, complete: false }; // unreadable manifest: listed as incomplete
  }
}

/**
 * Deletes cached models: `urlOrHash` is a manifest hash (64 hex digits), a model base URL
 * (every version stored from it), or a GGUF pair's text file URL (every version of its pairs). Removes each model's IndexedDB database and registry record.
 * A model that a context of this origin (another tab or worker, or this one) has loaded or is
 * loading is not deleted: InUseError names it, after the free versions are deleted, so nothing
 * in use is lost. Returns the manifest hashes deleted.
 */
export async function deleteCachedModel(urlOrHash: string): Promise<string[]> {
  let hashes: string[];
  if (/^[0-9a-f]{64}$/.test(urlOrHash)) {
    hashes = [urlOrHash];
  } else {
    const url = normalizeBaseUrl(urlOrHash);
    const file = normalizeFileUrl(urlOrHash);
    hashes = (await allRecords()).filter((r) => (r.kind === 'gguf' ? r.url === file : r.url === url)).map((r) => r.manifestHash);
  }
  const deleted: string[] = [];
  const busy: string[] = [];
  for (const h of hashes) {
    if ((await ifUnused(h, () => deleteModel(h))) === IN_USE) busy.push(h);
    else deleted.push(h);
  }
  if (busy.length) throw InUseError.kept(urlOrHash, busy, deleted.length, 'a tab or worker of this origin');
  return deleted;
}

/** Removes one model's database and registry record; the caller holds its `use` lock exclusively. */
export async function deleteModel(hash: string): Promise<void> {
  await closeDb(modelDbName(hash));
  await deleteDb(modelDbName(hash));
  await del(hash, registry());
}

/** The most recent stored version of the model at `url` (complete ones first), if any. */
export async function findCachedModel(url: string): Promise<ModelRecord | undefined> {
  const base = normalizeBaseUrl(url);
  const list = (await listCachedModels()).filter((m) => m.url === base);
  return list.find((m) => m.complete) ?? list[0];
}

export interface StorageUsage {
  usedBytes: number;
  quotaBytes: number;
  /** `navigator.storage.persisted()`: the browser will not evict this origin's data under pressure. */
  persisted: boolean;
}

export async function storageUsage(storage: StorageLike | null = defaultStorage()): Promise<StorageUsage> {
  const est = storage ? await storage.estimate() : {};
  const persisted = storage?.persisted ? await storage.persisted().catch(() => false) : false;
  return { usedBytes: est.usage ?? 0, quotaBytes: est.quota ?? 0, persisted };
}

/**
 * Base URL of a model folder, absolute and ending with '/': a trailing `manifest.json` is
 * dropped, relative URLs resolve against the page. Works for any static host and for Hugging
 * Face `https://huggingface.co/<org>/<repo>/resolve/<rev>/` URLs.
 */
export function normalizeBaseUrl(url: string): string {
  const origin = typeof location !== 'undefined' ? location.href : undefined;
  const u = new URL(url, origin);
  u.hash = '';
  u.search = '';
  if (u.pathname.endsWith('/manifest.json')) u.pathname = u.pathname.slice(0, -'manifest.json'.length);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.href;
}

/** A file's URL as the cache names it (a GGUF): absolute, without query or fragment. */
export function normalizeFileUrl(url: string): string {
  const u = new URL(url, typeof location !== 'undefined' ? location.href : undefined);
  u.hash = '';
  u.search = '';
  return u.href;
}

// ---------------------------------------------------------------------------------------------
// Reading a stored model.

/**
 * Read access to one stored model. Holds no bytes itself: every read goes to IndexedDB, so a
 * model larger than JS memory can be streamed into the GPU shard by shard (`upload.ts`).
 */
export class ModelFiles {
  private byName: Map<string, TensorEntry> | null = null;

  constructor(
    /** Normalised base URL. */
    readonly url: string,
    readonly manifest: Manifest,
    readonly manifestHash: string,
  ) {}

  /** The manifest entry of tensor `name`; FormatError if the model has none. */
  tensor(name: string): TensorEntry {
    this.byName ??= new Map(this.manifest.tensors.map((t) => [t.name, t]));
    const t = this.byName.get(name);
    if (!t) throw new FormatError(`model has no tensor "${name}"`);
    return t;
  }

  private async stored(file: ModelFile): Promise<StoredFile> {
    const s = await getFile(this.manifestHash, file.key);
    if (!entryValid(file, s)) throw new IntegrityError(`${file.name} is missing from the IndexedDB cache of ${this.url}; load the model again`);
    return s;
  }

  private shardFile(index: number): ModelFile {
    const f = manifestFiles(this.manifest)[index];
    if (!f || f.shardIndex !== index) throw new FormatError(`no shard ${index}`);
    return f;
  }

  /** The stored Blob of shard `index` (cheap: no bytes are read). */
  async shardBlob(index: number): Promise<Blob> {
    return (await this.stored(this.shardFile(index))).blob;
  }

  /**
   * All bytes of shard `index`, as verified when they were stored (see the module comment; the
   * load option `verify: true` re-hashes them before this is called).
   */
  async readShard(index: number): Promise<Uint8Array> {
    const f = this.shardFile(index);
    const s = await this.stored(f);
    try {
      return new Uint8Array(await s.blob.arrayBuffer());
    } catch (e) {
      await deleteFile(this.manifestHash, f.key);
      throw new IntegrityError(`${f.name}: cached bytes are unreadable (${(e as Error).message}); removed, load the model again`);
    }
  }

  /**
   * The bytes of one tensor (`which`: its data, or a q4 tensor's scales), read segment by
   * segment from the stored Blobs. For tests and small tensors; not hash-verified.
   */
  async readTensor(name: string, which: 'data' | 'scales' = 'data'): Promise<Uint8Array> {
    const t = this.tensor(name);
    const segs: Segment[] | undefined = which === 'data' ? t.data : t.quant?.scales;
    if (!segs) throw new FormatError(`tensor "${name}" has no ${which}`);
    const out = new Uint8Array(segs.reduce((a, s) => a + s.byteLength, 0));
    let at = 0;
    for (const seg of segs) {
      const blob = await this.shardBlob(seg.shard);
      if (seg.offset + seg.byteLength > blob.size) throw new FormatError(`tensor "${name}": segment beyond the end of shard ${seg.shard}`);
      out.set(new Uint8Array(await blob.slice(seg.offset, seg.offset + seg.byteLength).arrayBuffer()), at);
      at += seg.byteLength;
    }
    return out;
  }

  /** The tokenizer file's bytes (`manifest.tokenizer`), or null when the model has none. */
  async readTokenizer(): Promise<Uint8Array | null> {
    const f = manifestFiles(this.manifest).find((x) => x.shardIndex === -1);
    if (!f) return null;
    return new Uint8Array(await (await this.stored(f)).blob.arrayBuffer());
  }
}
