/**
 * Image files in Node -> RGBA pixels, the Node counterpart of the browser's decoder
 * (`src/image/decode.ts`): a file path, `file:` URL, `Buffer`/`Uint8Array`/`ArrayBuffer` or
 * `Blob` of PNG, JPEG, WebP, GIF (first frame), TIFF (first page) or anything else `sharp`
 * (libvips) decodes, turned upright by its EXIF orientation. Like the browser path (and Pillow
 * in the reference), embedded colour profiles are ignored, so the model sees the stored 8-bit
 * values; alpha is kept unpremultiplied. The result is an `RgbaImage` that the engine resizes
 * with the library's own Pillow-exact bicubic, so Node and the browser give the model the same
 * pixels. Failures are `ImageError`s naming the file.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ImageError } from '../errors.js';
import { checkImageSize, IMAGE_LIMITS, type RgbaImage } from '../image/decode.js';

/** Bytes or a file: what the Node entry decodes itself. */
export type NodeImageSource = string | URL | Uint8Array | ArrayBuffer | Blob;

type SharpModule = (typeof import('sharp'))['default'];

let sharpModule: Promise<SharpModule> | null = null;

/** sharp is an optional dependency with a native binary: loaded on first use, with a clear error. */
async function loadSharp(): Promise<SharpModule> {
  sharpModule ??= import('sharp').then(
    (m) => ((m as unknown as { default?: SharpModule }).default ?? m) as SharpModule,
    (e: unknown) => {
      sharpModule = null;
      throw new ImageError(`decoding images in Node needs the "sharp" package (an optional dependency): npm install sharp (${(e as Error).message})`, { cause: e });
    },
  );
  return sharpModule;
}

/** A short name of the source for messages. */
export function describeSource(src: NodeImageSource): string {
  if (typeof src === 'string') return src;
  if (src instanceof URL) return src.href;
  if (src instanceof Blob) return `Blob (${src.type || 'no type'}, ${src.size} bytes)`;
  return `${src.constructor?.name ?? 'bytes'} (${src.byteLength} bytes)`;
}

/** Reads a source's bytes (files from disk; Blobs and buffers as they are). */
export async function sourceBytes(src: NodeImageSource): Promise<Uint8Array> {
  if (typeof src === 'string' || src instanceof URL) {
    const path = src instanceof URL || src.startsWith('file:') ? fileURLToPath(src) : src;
    try {
      return await readFile(path);
    } catch (e) {
      throw new ImageError(`${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
  }
  if (src instanceof Blob) return new Uint8Array(await src.arrayBuffer());
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  if (src instanceof Uint8Array) return src;
  throw new ImageError(`unsupported image input in Node: ${describeSource(src as NodeImageSource)}`);
}

/** Is this a PDF (by its magic bytes)? */
export function isPdf(bytes: Uint8Array): boolean {
  return bytes.length >= 5 && String.fromCharCode(...bytes.subarray(0, 5)) === '%PDF-';
}

/**
 * Decodes image bytes to upright, unpremultiplied RGBA. `what` names the source in errors.
 * The size is checked from the header against `IMAGE_LIMITS` before any pixel is decoded.
 */
export async function decodeImageBytes(bytes: Uint8Array, what = describeSource(bytes)): Promise<RgbaImage> {
  const sharp = await loadSharp();
  // failOn 'error': accept what browsers accept (truncated-but-decodable JPEGs warn only).
  const open = () => sharp(bytes, { ignoreIcc: true, pages: 1, failOn: 'error', limitInputPixels: IMAGE_LIMITS.maxPixels });
  let meta;
  try {
    meta = await open().metadata();
  } catch (e) {
    throw new ImageError(`${what}: not a decodable image (${(e as Error).message})`, { cause: e });
  }
  if (meta.format === 'pdf') throw new ImageError(`${what}: a PDF, not an image (pass it where pages are accepted)`);
  const turned = (meta.orientation ?? 1) >= 5;
  const width = turned ? meta.height : meta.width;
  const height = turned ? meta.width : meta.height;
  checkImageSize(width ?? 0, height ?? 0, `${what} (${meta.format ?? 'image'})`);
  try {
    const { data, info } = await open()
      .autoOrient()
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`${info.channels} channels after conversion to RGBA`);
    return { width: info.width, height: info.height, data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    throw new ImageError(`${what}: could not decode the ${meta.format ?? ''} image of ${width}x${height} (${(e as Error).message})`, { cause: e });
  }
}

/** Decodes one image source (not a PDF: see `pdf.ts`) to RGBA. */
export async function decodeImageSource(src: NodeImageSource): Promise<RgbaImage> {
  return decodeImageBytes(await sourceBytes(src), describeSource(src));
}
