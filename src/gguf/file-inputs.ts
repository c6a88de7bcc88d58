/**
 * A GGUF pair given as `File`/`Blob` objects (`loadPixtral({ url: file, mmproj: mmprojFile })`):
 * a file picked from disk is read in place, slice by slice (`blobSource`); nothing is uploaded
 * and nothing is copied into the IndexedDB cache. Files cross to the worker as they are (a `File`
 * is structured-cloneable: the clone reads the same file on disk).
 *
 * The GGUF loader names its inputs by string (messages, `ModelInfo`), so each object gets its
 * file name as its name here, and an `openGguf` that reads those names from the objects; string
 * URLs (a mixed pair) still go to the opener given, or to Range requests.
 */
import { FormatError } from '../errors.js';
import type { LoadOptions, LoadRequest } from '../engine/types.js';
import { blobSource, urlSource, type ByteSource } from './source.js';

const isBlob = (x: unknown): x is Blob => typeof Blob !== 'undefined' && x instanceof Blob;

/** What a Blob is called in messages: a File's name, else `blob (<bytes> bytes)`. */
export function blobName(b: Blob): string {
  const name = (b as Partial<File>).name;
  return typeof name === 'string' && name ? name : `blob (${b.size} bytes)`;
}

/**
 * Load options with File/Blob `url`/`mmproj` turned into names read through `openGguf`;
 * options with strings only come back as they are.
 */
export function resolveFileInputs(req: LoadRequest): LoadOptions {
  const { url, mmproj } = req;
  if (!isBlob(url) && !isBlob(mmproj)) return req as LoadOptions;
  if (mmproj === undefined) {
    throw new FormatError(`${blobName(url as Blob)}: a File or Blob url must be a llama.cpp text GGUF, loaded with its mmproj (pass { url: textFile, mmproj: mmprojFile })`);
  }
  const objects = new Map<string, Blob>();
  const name = (x: string | Blob, role: string): string => {
    if (!isBlob(x)) return x;
    let n = blobName(x);
    if (objects.has(n)) n = `${n} (${role})`; // two blobs of one name: keep the messages apart
    objects.set(n, x);
    return n;
  };
  const textName = name(url, 'text');
  const mmprojName = name(mmproj, 'mmproj');
  const other = req.openGguf ?? ((u: string) => urlSource(u, { fetch: req.fetch }));
  const openGguf = (u: string): ByteSource => {
    const b = objects.get(u);
    return b ? blobSource(b, u) : other(u);
  };
  return { ...req, url: textName, mmproj: mmprojName, openGguf };
}
