/**
 * "The exact input the vision encoder gets": decode, composite alpha onto white, resize to the
 * target size (`size.ts`) with Pillow's BICUBIC (`resample.ts`, byte-exact with the Hugging Face
 * reference), rescale by 1/255 and normalise with the CLIP mean/std, as a CHW `Float32Array`.
 * Meant to run in the worker: the main thread only calls `toTransferable` (`decode.ts`).
 *
 * Numerics follow `PixtralImageProcessor`: `x = float32(u8 * (1/255))`, then `(x - mean) / std`
 * in float32 with float32 mean/std, so the result equals the reference bit for bit.
 *
 * Sizes default to mistral_common's rounding (see `size.ts`); pixels follow Hugging Face (Pillow
 * BICUBIC, antialiased). Recent mistral_common resizes with OpenCV `INTER_CUBIC` on float32
 * instead (a = -0.75, no antialiasing when downscaling); the fixtures, and this code, use Pillow.
 */
import { tokenPixels, type ModelConfig } from '../config.js';
import { LimitError } from '../errors.js';
import { decodeImage, type ImageInput, type RgbaImage } from './decode.js';
import { resizeBicubicRgb } from './resample.js';
import { sizeForImage, type ImageSize, type SizeRounding } from './size.js';

/** CLIP normalisation (Pixtral, mistral3). */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export interface PreprocessOptions {
  /** Longest-edge limit: the model's `vision.imageSize`, or lower to spend fewer tokens. */
  longestEdge: number;
  /** Vision patch size (16 Pixtral, 14 mistral3). */
  patchSize: number;
  /** Spatial merge (1 Pixtral, 2 mistral3): the size is rounded up to patchSize * mergeSize. */
  mergeSize?: number;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Downscale rounding: 'nearest' (mistral_common, default) or 'floor' (Hugging Face). */
  rounding?: SizeRounding;
}

export interface PreprocessedImage extends ImageSize {
  /** Normalised pixels, CHW [3, height, width]. */
  pixels: Float32Array;
}

/**
 * Drops alpha the way the reference's `convert_to_rgb` does (Pillow `alpha_composite` onto an
 * opaque white background, same integer arithmetic), in place; opaque pixels are untouched.
 * Returns whether any pixel had alpha < 255.
 */
export function compositeOnWhite(rgba: Uint8Array | Uint8ClampedArray): boolean {
  let any = false;
  for (let i = 0; i < rgba.length; i += 4) {
    const a = rgba[i + 3]!;
    if (a === 255) continue;
    any = true;
    // AlphaComposite.c with dst = (255, 255, 255, 255): coef1 = a << 7, coef2 = (255 - a) << 7.
    const c1 = a * 128;
    const c2 = (255 - a) * 128;
    for (let c = 0; c < 3; c++) {
      const t = rgba[i + c]! * c1 + 255 * c2 + (0x80 << 7);
      rgba[i + c] = (((t >> 8) + t) >> 8) >> 7;
    }
    rgba[i + 3] = 255;
  }
  return any;
}

/** Packed RGB u8 (HWC) -> normalised CHW float32, with the reference's float32 rounding. */
export function normalizeToChw(
  rgb: Uint8Array,
  width: number,
  height: number,
  mean: readonly number[] = CLIP_MEAN,
  std: readonly number[] = CLIP_STD,
): Float32Array {
  const hw = width * height;
  const out = new Float32Array(3 * hw);
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let v = 0; v < 256; v++) {
      const x = Math.fround(v * 0.00392156862745098);
      lut[c * 256 + v] = Math.fround(Math.fround(x - m) / s);
    }
  }
  for (let c = 0; c < 3; c++) {
    const plane = c * hw;
    const l = c * 256;
    for (let i = 0, j = c; i < hw; i++, j += 3) out[plane + i] = lut[l + rgb[j]!]!;
  }
  return out;
}

export interface ResizedImage extends ImageSize {
  /** Resized 8-bit RGB, packed HWC. */
  rgb: Uint8Array;
}

function hasTransparency(rgba: Uint8Array | Uint8ClampedArray): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return true;
  return false;
}

/**
 * Decoded RGBA -> target size (see `size.ts`) with Pillow bicubic, packed RGB u8. Transparent
 * pixels are composited onto white first, on a copy (the input is never modified).
 */
export function resizeForModel(
  img: RgbaImage,
  opts: { longestEdge: number; tokenPx: number; rounding?: SizeRounding },
): ResizedImage {
  const size = sizeForImage(img.height, img.width, opts);
  let data = img.data;
  if (hasTransparency(data)) {
    data = data.slice();
    compositeOnWhite(data);
  }
  const rgb = resizeBicubicRgb(data, img.width, img.height, 4, size.width, size.height);
  return { ...size, rgb };
}

function checkTriple(v: readonly number[] | undefined, what: string, positive: boolean): void {
  if (v === undefined) return;
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x) || (positive && x <= 0))) {
    throw new LimitError(`${what} must be 3 finite${positive ? ' positive' : ''} numbers (got ${JSON.stringify(v)})`);
  }
}

/** Checks preprocess options (before paying for a decode); returns pixels per token side. */
export function checkPreprocessOptions(opts: PreprocessOptions): number {
  const mergeSize = opts.mergeSize ?? 1;
  if (!Number.isInteger(opts.patchSize) || opts.patchSize <= 0) throw new LimitError(`patchSize must be a positive integer (got ${opts.patchSize})`);
  if (!Number.isInteger(mergeSize) || mergeSize <= 0) throw new LimitError(`mergeSize must be a positive integer (got ${mergeSize})`);
  checkTriple(opts.mean, 'mean', false);
  checkTriple(opts.std, 'std', true);
  const tokenPx = opts.patchSize * mergeSize;
  sizeForImage(1, 1, { longestEdge: opts.longestEdge, tokenPx, rounding: opts.rounding });
  return tokenPx;
}

/** Already decoded RGBA -> what the vision encoder gets (see `preprocessImage`). */
export function preprocessDecoded(decoded: RgbaImage, opts: PreprocessOptions): PreprocessedImage {
  const tokenPx = checkPreprocessOptions(opts);
  const { rgb, ...size } = resizeForModel(decoded, { longestEdge: opts.longestEdge, tokenPx, rounding: opts.rounding });
  const pixels = normalizeToChw(rgb, size.width, size.height, opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD);
  return { pixels, ...size };
}

/**
 * Decodes `image` and returns exactly what the vision encoder gets: `pixels` CHW [3, H, W]
 * normalised, H and W multiples of patchSize * mergeSize, the token grid (rows x cols, in
 * merged tokens) and the prompt token count rows * (cols + 1). Throws `ImageError` for
 * undecodable or absurd images, `LimitError` for bad options.
 */
export async function preprocessImage(image: ImageInput, opts: PreprocessOptions): Promise<PreprocessedImage> {
  checkPreprocessOptions(opts); // before paying for a decode
  return preprocessDecoded(await decodeImage(image), opts);
}

/**
 * Preprocess options for a model: its patch size and spatial merge, and the longest edge = the
 * model's `vision.imageSize` unless a lower `longestEdge` is asked for (fewer tokens). A larger
 * one is refused (`LimitError`): the vision tower's 2D RoPE grid covers `imageSize / patchSize`
 * patches per side.
 */
export function preprocessOptionsFor(
  config: ModelConfig,
  opts: { longestEdge?: number; rounding?: SizeRounding } = {},
): PreprocessOptions {
  const { imageSize, patchSize } = config.vision;
  const mergeSize = config.projector.spatialMergeSize;
  const longestEdge = opts.longestEdge ?? imageSize;
  if (!Number.isInteger(longestEdge) || longestEdge <= 0 || longestEdge > imageSize) {
    throw new LimitError(`longestEdge must be an integer in 1..${imageSize} (the model's image_size), got ${longestEdge}`);
  }
  const tokenPx = tokenPixels(config);
  if (Math.ceil(longestEdge / tokenPx) * mergeSize > Math.floor(imageSize / patchSize)) {
    throw new LimitError(
      `longestEdge ${longestEdge} rounds up to ${Math.ceil(longestEdge / tokenPx) * tokenPx} pixels, past the ` +
        `${Math.floor(imageSize / patchSize)}-patch RoPE grid of image_size ${imageSize}`,
    );
  }
  return { longestEdge, patchSize, mergeSize, rounding: opts.rounding };
}
