/**
 * Preprocessed images by identity, so a follow-up turn does no image work for images it already
 * saw: no decode, resize or normalisation, and no pixel hash for the KV-cache key.
 *
 * Keys: the same `Blob` or `ImageBitmap` object (both immutable) hits a `WeakMap` at no cost.
 * Anything else gets a content key computed once per call: a `Blob` (a clone that crossed the
 * worker boundary is a new object) by the SHA-256 of its encoded bytes, far cheaper than
 * decode + resize; an `ImageData` (mutable, so never keyed by identity) by the SHA-256 of its
 * pixels; a canvas, `<img>` or cloned `ImageBitmap` by the SHA-256 of its decoded pixels (the
 * read-back is paid, the resize is not). The content key doubles as the KV cache's image key.
 * Entries are kept in least-recently-used order, at most `capacity` of them.
 */
import { ImageError } from '../errors.js';
import { decodeImage, type ImageInput, type RgbaImage } from '../image/decode.js';
import { checkPreprocessOptions, preprocessDecoded, type PreprocessedImage, type PreprocessOptions } from '../image/preprocess.js';
import { sha256Hex } from '../weights/hash.js';

export interface CachedImage {
  image: PreprocessedImage;
  /** Names the image's content (and the preprocess options): the KV-cache key of its tokens. */
  key: string;
  /** True when this call decoded and resized it (a cache miss). */
  fresh: boolean;
}

const isBlob = (x: unknown): x is Blob => typeof Blob !== 'undefined' && x instanceof Blob;
const isImageBitmap = (x: unknown): x is ImageBitmap => typeof ImageBitmap !== 'undefined' && x instanceof ImageBitmap;

export class ImageCache {
  private readonly byObject = new WeakMap<object, string>();
  private readonly entries = new Map<string, PreprocessedImage>();

  constructor(private readonly capacity = 16) {}

  async get(input: ImageInput, opts: PreprocessOptions): Promise<CachedImage> {
    checkPreprocessOptions(opts);
    const suffix = `|${opts.longestEdge}/${opts.patchSize}/${opts.mergeSize ?? 1}/${opts.rounding ?? 'nearest'}/${opts.mean ?? ''}/${opts.std ?? ''}`;
    let content = typeof input === 'object' && input !== null ? this.byObject.get(input) : undefined;
    let decoded: RgbaImage | null = null;
    if (!content) {
      if (isBlob(input)) content = `blob:${input.size}:${await hashBytes(await readBlob(input))}`;
      else {
        // ImageData is used as is (its size and a detached buffer are checked); anything else is
        // read back once here and not again below.
        decoded = await decodeImage(input);
        content = `rgba:${decoded.width}x${decoded.height}:${await hashBytes(decoded.data)}`;
      }
      if (isBlob(input) || isImageBitmap(input)) this.byObject.set(input, content);
    }
    const key = content + suffix;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // refresh its place in the LRU order
      this.entries.set(key, hit);
      return { image: hit, key, fresh: false };
    }
    const image = preprocessDecoded(decoded ?? (await decodeImage(input)), opts);
    this.entries.set(key, image);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return { image, key, fresh: true };
  }

  clear(): void {
    this.entries.clear();
  }
}

async function readBlob(b: Blob): Promise<ArrayBuffer> {
  try {
    return await b.arrayBuffer();
  } catch (e) {
    throw new ImageError(`could not read the image data (${b.size} bytes)`, { cause: e });
  }
}

async function hashBytes(data: ArrayBuffer | Uint8ClampedArray): Promise<string> {
  return (await sha256Hex(data)).slice(0, 32); // 128 bits: collisions are not a practical concern
}
