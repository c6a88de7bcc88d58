/**
 * A converted model folder on disk as a `ModelSource`: `manifest.json`, the shards and the
 * tokenizer file are read in place (never copied), each file's length and SHA-256 checked
 * against the manifest when it is read (a folder was never hashed by us before). Also used for
 * the disk cache of a remote model (`cache.ts`), which is such a folder, hashed at download.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError, IntegrityError } from '../errors.js';
import { validateManifest, type Manifest } from '../weights/manifest.js';
import { manifestFiles, type ModelFile } from '../weights/store.js';
import { sha256Hex } from '../weights/hash.js';
import type { ModelSource, OpenedModel } from '../weights/source.js';

/** `url` names a local folder: a path, or a `file:` URL (of the folder or its manifest.json). */
export function isLocalModel(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || url.startsWith('file:');
}

/** The folder a local model `url` names (a path or `file:` URL; a trailing manifest.json is dropped). */
export function localModelDir(url: string): string {
  const p = url.startsWith('file:') ? fileURLToPath(url) : url;
  return resolve(p.replace(/[\\/]manifest\.json$/, ''));
}

/** Parses and validates manifest bytes; FormatError names the folder. */
export function parseManifestBytes(bytes: Uint8Array, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new FormatError(`${where}: manifest.json is not JSON: ${(e as Error).message}`, { cause: e });
  }
  try {
    return validateManifest(json);
  } catch (e) {
    throw new FormatError(`${where}: ${(e as Error).message}`, { cause: e });
  }
}

export class DiskModelSource implements ModelSource {
  constructor(
    /** Absolute folder holding manifest.json. */
    readonly dir: string,
    readonly manifest: Manifest,
    /** Shown in messages (the folder, or the URL a cached copy came from). */
    readonly url: string = dir,
    /**
     * Hash each file when it is read (default). The disk cache passes false: its files were
     * hashed once when downloaded, as the browser's cache does (lengths are always checked).
     */
    private readonly verifyByDefault = true,
  ) {}

  private async read(f: ModelFile, verify: boolean): Promise<Uint8Array> {
    const path = join(this.dir, f.name);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new IntegrityError(`${f.name} of ${this.url} cannot be read (${(e as Error).message}); the model folder is incomplete`);
    }
    if (bytes.byteLength !== f.byteLength) {
      throw new IntegrityError(`${path} has ${bytes.byteLength} bytes, the manifest says ${f.byteLength}`);
    }
    if (verify) {
      const got = await sha256Hex(bytes);
      if (got !== f.sha256) throw new IntegrityError(`${path} fails verification: sha256 ${got}, expected ${f.sha256}`);
    }
    return bytes;
  }

  readShard(index: number, opts: { verify?: boolean } = {}): Promise<Uint8Array> {
    const f = manifestFiles(this.manifest)[index];
    if (!f || f.shardIndex !== index) throw new FormatError(`${this.url}: no shard ${index}`);
    return this.read(f, opts.verify ?? this.verifyByDefault);
  }

  async readTokenizer(): Promise<Uint8Array | null> {
    const f = manifestFiles(this.manifest).find((x) => x.shardIndex === -1);
    return f ? this.read(f, this.verifyByDefault) : null;
  }
}

/** Reads and validates `<dir>/manifest.json`; FormatError when the folder holds no model. */
export async function readManifestFile(dir: string): Promise<{ manifest: Manifest; bytes: Uint8Array }> {
  const path = join(dir, 'manifest.json');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const why = (await stat(dir).catch(() => null))?.isDirectory()
      ? `it has no manifest.json (make one with "pixtral-webgpu convert")`
      : 'no such folder';
    throw new FormatError(`${dir} is not a converted model folder: ${why}`, { cause: e });
  }
  return { manifest: parseManifestBytes(bytes, dir), bytes };
}

/** Opens a local model folder in place (the `ModelOpener` for paths and `file:` URLs). */
export async function openModelFolder(url: string): Promise<OpenedModel> {
  const dir = localModelDir(url);
  const { manifest } = await readManifestFile(dir);
  return { files: new DiskModelSource(dir, manifest), manifest, fromCache: true };
}
