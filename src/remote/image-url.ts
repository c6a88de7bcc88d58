/**
 * Image objects (File, Blob, canvas, ImageBitmap, ImageData, img) -> `data:` URLs for a remote
 * server. The image is first brought to the size the model works at (the same target-size rule
 * and Pillow-exact bicubic resize as the local engine), so no pixels travel for nothing and the
 * server's own resize is the identity: the remote model sees the pixels the local one would.
 * Encoded as PNG (lossless); when the PNG is over `jpegOverBytes`, as JPEG (quality 0.92).
 * Needs `OffscreenCanvas` (browsers, workers); in Node send `image_url` data URLs instead.
 */
import { ImageError } from '../errors.js';
import { decodeImage, type ImageInput } from '../image/decode.js';
import { resizeForModel } from '../image/preprocess.js';

export interface RemoteImageOptions {
  /** The model's longest image edge in pixels (Pixtral-12B: 1024; mistral3: 1540). Default 1024. */
  longestEdge?: number;
  /** Pixels per image token side (Pixtral: 16; mistral3: 28 = patch 14 x merge 2). Default 16. */
  tokenPx?: number;
  /** PNGs larger than this many bytes are sent as JPEG instead. Default 1 MiB. */
  jpegOverBytes?: number;
}

export const REMOTE_IMAGE_DEFAULTS = Object.freeze({ longestEdge: 1024, tokenPx: 16, jpegOverBytes: 2 ** 20 });

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Decodes, resizes to the model's input size and encodes `image` as a data: URL. */
export async function imageToDataUrl(image: ImageInput, o: RemoteImageOptions = {}): Promise<string> {
  const { longestEdge, tokenPx, jpegOverBytes } = { ...REMOTE_IMAGE_DEFAULTS, ...o };
  if (typeof OffscreenCanvas !== 'function') {
    throw new ImageError('encoding an image object for a remote server needs OffscreenCanvas (a browser or worker); in Node pass an image_url data: URL');
  }
  const decoded = await decodeImage(image);
  const { rgb, width, height } = resizeForModel(decoded, { longestEdge, tokenPx });
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i]!;
    rgba[j + 1] = rgb[i + 1]!;
    rgba[j + 2] = rgb[i + 2]!;
    rgba[j + 3] = 255;
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new ImageError('no 2d context on an OffscreenCanvas to encode the image');
  ctx.putImageData(new ImageData(rgba, width, height), 0, 0);
  let blob = await canvas.convertToBlob({ type: 'image/png' });
  if (blob.size > jpegOverBytes) blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
  return `data:${blob.type};base64,${bytesToBase64(new Uint8Array(await blob.arrayBuffer()))}`;
}
