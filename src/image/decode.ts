/**
 * Image inputs -> decoded RGBA pixels. Decoding is the browser's job: a `File`/`Blob` goes through
 * `createImageBitmap(blob, { imageOrientation: 'from-image' })` (PNG, JPEG, WebP, GIF first frame,
 * whatever the browser decodes; EXIF orientation honoured), and pixels are read back through an
 * `OffscreenCanvas`, so everything here works inside a Web Worker. `HTMLCanvasElement` and
 * `HTMLImageElement` exist only on the main thread; `toTransferable` turns any input into
 * something a worker can receive without a copy (an `ImageBitmap`, an `ImageData` whose buffer is
 * transferred, or the `Blob` itself, which structured clone passes by reference).
 *
 * Colour: embedded colour profiles are ignored (`colorSpaceConversion: 'none'`), as Pillow does in
 * the reference pipeline, so the model sees the stored 8-bit values. Alpha is kept here
 * (unpremultiplied, as `ImageData`); `preprocess.ts` composites it onto white like the reference.
 *
 * Failures are `ImageError`s: undecodable bytes (with the browser's error as `cause`), zero-size
 * images, and sizes beyond `IMAGE_LIMITS` (checked from the file header before decoding, so a
 * 100000 x 100000 PNG is refused without allocating anything).
 */
import { ImageError } from '../errors.js';

/**
 * Anything `preprocessImage` accepts. `File` is a `Blob`. An `RgbaImage` is pixels decoded
 * elsewhere (`pixtral-webgpu/node` decodes files with sharp into one).
 */
export type ImageInput =
  | RgbaImage
  | Blob
  | ImageBitmap
  | ImageData
  | OffscreenCanvas
  | HTMLCanvasElement
  | HTMLImageElement;

/** What crosses to the worker: see `toTransferable`. */
export type TransferableImage = ImageBitmap | ImageData | Blob | RgbaImage;

/** Decoded pixels: row-major RGBA, 8 bits per channel, not premultiplied (like `ImageData`). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/**
 * Bounds on decoded images: 16384 px per side (the common canvas/texture limit) and 2^25 pixels
 * (33.5 Mpx, 128 MiB of RGBA). The model never sees more than its image size (1024 px per side
 * for Pixtral, 1540 for mistral3), and the Pillow-exact resize needs the full-resolution source,
 * so rather than decoding downscaled (which would not be Pillow-exact) a file past the budget is
 * refused from its header, before the browser decodes it: peak memory stays bounded while 8K
 * screenshots (7680 x 4320 = 33.2 Mpx) and any screen capture still fit.
 */
export const IMAGE_LIMITS = Object.freeze({ maxSide: 16384, maxPixels: 2 ** 25 });

export function checkImageSize(width: number, height: number, what = 'image'): void {
  if (!(width > 0 && height > 0)) throw new ImageError(`${what} has zero size (${width}x${height})`);
  if (width > IMAGE_LIMITS.maxSide || height > IMAGE_LIMITS.maxSide || width * height > IMAGE_LIMITS.maxPixels) {
    throw new ImageError(
      `${what} is ${width}x${height} pixels, beyond the limit of ${IMAGE_LIMITS.maxSide} per side and ` +
        `${IMAGE_LIMITS.maxPixels} pixels in all (the model sees at most its image size: downscale it first)`,
    );
  }
}

/** An `ImageData` whose buffer was transferred to another thread has no pixels left. */
function checkImageData(d: ImageData): void {
  checkImageSize(d.width, d.height, 'ImageData');
  if (d.data.length !== d.width * d.height * 4) {
    throw new ImageError(
      `ImageData of ${d.width}x${d.height} has ${d.data.length} bytes of pixels instead of ${d.width * d.height * 4}: ` +
        'its buffer was detached (transferred to another thread); pass a copy',
    );
  }
}

const hasGlobal = (name: string): boolean => typeof (globalThis as Record<string, unknown>)[name] === 'function';
const isImageData = (x: unknown): x is ImageData => hasGlobal('ImageData') && x instanceof ImageData;
const isImageBitmap = (x: unknown): x is ImageBitmap => hasGlobal('ImageBitmap') && x instanceof ImageBitmap;
const isOffscreenCanvas = (x: unknown): x is OffscreenCanvas => hasGlobal('OffscreenCanvas') && x instanceof OffscreenCanvas;
const isCanvasElement = (x: unknown): x is HTMLCanvasElement =>
  hasGlobal('HTMLCanvasElement') && x instanceof HTMLCanvasElement;
const isImageElement = (x: unknown): x is HTMLImageElement => hasGlobal('HTMLImageElement') && x instanceof HTMLImageElement;
const isBlob = (x: unknown): x is Blob => hasGlobal('Blob') && x instanceof Blob;
/** A plain `{ width, height, data }` (not an ImageData: those are handled above). */
export const isRgbaImage = (x: unknown): x is RgbaImage =>
  typeof x === 'object' && x !== null && (x as RgbaImage).data instanceof Uint8ClampedArray &&
  typeof (x as RgbaImage).width === 'number' && typeof (x as RgbaImage).height === 'number';

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x !== 'object') return typeof x;
  return (x as object).constructor?.name ?? 'object';
}

/** Width x height and format read from a file header, without decoding; null if unrecognised. */
export interface ProbedSize {
  format: 'png' | 'gif' | 'jpeg' | 'webp' | 'bmp';
  width: number;
  height: number;
}

/** Reads the pixel size from a PNG, GIF, JPEG, WebP or BMP header (a size check, not a decoder). */
export function probeImageSize(b: Uint8Array): ProbedSize | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ascii = (o: number, n: number): string => String.fromCharCode(...b.subarray(o, o + n));
  if (b.length >= 24 && b[0] === 0x89 && ascii(1, 3) === 'PNG' && ascii(12, 4) === 'IHDR') {
    return { format: 'png', width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (b.length >= 10 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) {
    return { format: 'gif', width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
  }
  if (b.length >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    const chunk = ascii(12, 4);
    if (chunk === 'VP8 ') return { format: 'webp', width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = dv.getUint32(21, true);
      return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') {
      const u24 = (o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
      return { format: 'webp', width: u24(24) + 1, height: u24(27) + 1 };
    }
    return null;
  }
  if (b.length >= 26 && ascii(0, 2) === 'BM') {
    return { format: 'bmp', width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)) };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let o = 2;
    while (o + 9 <= b.length) {
      if (b[o] !== 0xff) return null;
      const m = b[o + 1]!;
      if (m === 0xff) { o++; continue; } // fill byte
      if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { o += 2; continue; } // no length
      if (m === 0xd9 || m === 0xda) return null; // end / start of scan before any frame header
      const len = dv.getUint16(o + 2);
      // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
        return { format: 'jpeg', height: dv.getUint16(o + 5), width: dv.getUint16(o + 7) };
      }
      o += 2 + len;
    }
  }
  return null;
}

/** Bytes of a header read to probe the size (JPEG EXIF/ICC segments can push SOF far in). */
const PROBE_BYTES = 256 * 1024;

/**
 * Reads a file's header and refuses it (`ImageError`) when its size is beyond `IMAGE_LIMITS`,
 * without decoding anything. Run it before handing a dropped file to any decoder (the demo does,
 * on the main thread). Returns the probed size, or null for a format it does not recognise.
 */
export async function checkImageHeader(blob: Blob): Promise<ProbedSize | null> {
  let probed: ProbedSize | null = null;
  try {
    probed = probeImageSize(new Uint8Array(await blob.slice(0, PROBE_BYTES).arrayBuffer()));
  } catch (e) {
    throw new ImageError(`could not read the image data (${blob.size} bytes)`, { cause: e });
  }
  if (probed) checkImageSize(probed.width, probed.height, `${probed.format.toUpperCase()} image`);
  return probed;
}

async function decodeBlob(blob: Blob): Promise<ImageBitmap> {
  const probed = await checkImageHeader(blob);
  const what = probed
    ? `${probed.format.toUpperCase()} image of ${probed.width}x${probed.height} pixels`
    : `image data (${blob.type || 'unknown type'}, ${blob.size} bytes)`;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      imageOrientation: 'from-image',
      premultiplyAlpha: 'none',
      colorSpaceConversion: 'none',
    });
  } catch (e) {
    throw new ImageError(`the browser could not decode the ${what}`, { cause: e });
  }
  try {
    checkImageSize(bitmap.width, bitmap.height, 'decoded image');
  } catch (e) {
    bitmap.close();
    throw e;
  }
  return bitmap;
}

async function loadedImageElement(img: HTMLImageElement): Promise<HTMLImageElement> {
  if (!img.complete || img.naturalWidth === 0) {
    try {
      await img.decode();
    } catch (e) {
      throw new ImageError(`the <img> (${img.currentSrc || img.src || 'no src'}) could not be decoded`, { cause: e });
    }
  }
  checkImageSize(img.naturalWidth, img.naturalHeight, '<img>');
  return img;
}

type Drawable = ImageBitmap | OffscreenCanvas | HTMLCanvasElement | HTMLImageElement;

function sizeOf(src: Drawable): [number, number] {
  return isImageElement(src) ? [src.naturalWidth, src.naturalHeight] : [src.width, src.height];
}

/** Draws `src` at its natural size on a fresh canvas and reads the pixels back. */
function readBack(src: Drawable): RgbaImage {
  const [width, height] = sizeOf(src);
  checkImageSize(width, height);
  let ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D | null;
  if (hasGlobal('OffscreenCanvas')) {
    ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  } else if (typeof document !== 'undefined') {
    const c = document.createElement('canvas');
    c.width = width;
    c.height = height;
    ctx = c.getContext('2d', { willReadFrequently: true });
  } else {
    throw new ImageError('no OffscreenCanvas in this context: cannot read image pixels');
  }
  if (!ctx) throw new ImageError(`could not create a ${width}x${height} 2D canvas to read the image`);
  ctx.imageSmoothingEnabled = false;
  try {
    ctx.drawImage(src, 0, 0, width, height);
    const d = ctx.getImageData(0, 0, width, height);
    return { width, height, data: d.data };
  } catch (e) {
    // SecurityError (a cross-origin <img> without CORS taints the canvas) or out of memory.
    throw new ImageError(`could not read the pixels of a ${width}x${height} ${describe(src)}`, { cause: e });
  }
}

/**
 * Decodes any accepted input to unpremultiplied RGBA pixels. Blobs, `ImageBitmap`s, `ImageData`
 * and `OffscreenCanvas`es work in a worker; `ImageData` is used as is (no copy).
 */
export async function decodeImage(input: ImageInput): Promise<RgbaImage> {
  if (isImageData(input)) {
    checkImageData(input);
    return { width: input.width, height: input.height, data: input.data };
  }
  if (isBlob(input)) {
    const bitmap = await decodeBlob(input);
    try {
      return readBack(bitmap);
    } finally {
      bitmap.close();
    }
  }
  if (isImageBitmap(input)) {
    checkImageSize(input.width, input.height, 'ImageBitmap (closed or detached if 0x0)');
    return readBack(input);
  }
  if (isOffscreenCanvas(input) || isCanvasElement(input)) {
    checkImageSize(input.width, input.height, describe(input));
    return readBack(input);
  }
  if (isImageElement(input)) return readBack(await loadedImageElement(input));
  if (isRgbaImage(input)) return checkRgba(input);
  throw new ImageError(`unsupported image input: ${describe(input)}`);
}

function checkRgba(im: RgbaImage): RgbaImage {
  checkImageSize(im.width, im.height, 'RGBA image');
  if (im.data.length !== im.width * im.height * 4) {
    throw new ImageError(`RGBA image of ${im.width}x${im.height} needs ${im.width * im.height * 4} bytes, got ${im.data.length}`);
  }
  return im;
}

/**
 * Main-thread side of the hand-over: turns any input into something that reaches a worker
 * without a copy. DOM elements and canvases become an `ImageBitmap` (the browser snapshots them,
 * no JS pixel work); an `ImageBitmap`, `ImageData` or `Blob` is returned as is. Post it with
 * `transferList(t)` as the transfer list: that detaches a caller's `ImageBitmap` / `ImageData`
 * buffer (pass a copy if you still need it). Blobs are decoded in the worker.
 */
export async function toTransferable(input: ImageInput): Promise<TransferableImage> {
  if (isImageData(input)) {
    checkImageData(input);
    return input;
  }
  if (isBlob(input)) return input;
  if (isRgbaImage(input)) return checkRgba(input);
  if (isImageBitmap(input)) {
    checkImageSize(input.width, input.height, 'ImageBitmap (closed or detached if 0x0)');
    return input;
  }
  let src: OffscreenCanvas | HTMLCanvasElement | HTMLImageElement;
  if (isOffscreenCanvas(input) || isCanvasElement(input)) {
    checkImageSize(input.width, input.height, describe(input));
    src = input;
  } else if (isImageElement(input)) {
    src = await loadedImageElement(input);
  } else {
    throw new ImageError(`unsupported image input: ${describe(input)}`);
  }
  try {
    return await createImageBitmap(src, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch (e) {
    throw new ImageError(`could not snapshot the ${describe(src)} as an ImageBitmap`, { cause: e });
  }
}

/** The transfer list for `postMessage(t, transferList(t))`. */
export function transferList(t: TransferableImage): Transferable[] {
  if (isImageBitmap(t)) return [t];
  if (isImageData(t) || isRgbaImage(t)) return [t.data.buffer as ArrayBuffer];
  return [];
}
