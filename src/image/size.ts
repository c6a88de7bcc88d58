/**
 * The target-size rule of the Pixtral / mistral3 image processors, as a pure function: how large
 * an image becomes before the vision encoder, its token grid and how many prompt tokens it costs.
 * Used by `preprocessImage` and, before any pixel is touched, to report token counts.
 *
 * Rule (mistral_common `ImageEncoder._image_to_num_tokens`, which the models were trained with):
 *
 *   ratio = max(H / L, W / L)                   L = longest-edge limit (model `image_size`)
 *   if ratio > 1: H = round(H / ratio), W = round(W / ratio), each at least 1
 *   H = ceil(H / tokenPx) * tokenPx,  W = ceil(W / tokenPx) * tokenPx
 *
 * `round` is Python's `round` (nearest, ties to even). Hugging Face's `PixtralImageProcessor`
 * truncates instead (`int(H / ratio)`), so the two disagree when the scaled side lands just past
 * a multiple of `tokenPx`: a 1026x2049 image at L = 1024 is 528x1024 in mistral_common and
 * 512x1024 in HF. `rounding: 'floor'` reproduces HF. Either way the side is clamped to at least 1
 * pixel (a 1-pixel strip still gets one patch row, as current mistral_common does).
 *
 * `tokenPx` is pixels per side of one image token: the patch size for Pixtral (16), patch * merge
 * for mistral3 (14 * 2 = 28; see `tokenPixels` in `src/config.ts`). An image of rows x cols
 * tokens takes rows * (cols + 1) prompt tokens: each row is `[IMG]` * cols then `[IMG_BREAK]`,
 * the last break being `[IMG_END]`.
 */
import { ImageError, LimitError } from '../errors.js';

export type SizeRounding = 'nearest' | 'floor';

export interface SizeOptions {
  /** Longest-edge limit L in pixels (the model's `image_size`, or lower to save tokens). */
  longestEdge: number;
  /** Pixels per side of one image token (patch, or patch * spatial merge). */
  tokenPx: number;
  /** How the downscaled sides are rounded: 'nearest' (mistral_common, default) or 'floor' (HF). */
  rounding?: SizeRounding;
}

export interface ImageSize {
  /** Resized height in pixels, a multiple of `tokenPx`. */
  height: number;
  /** Resized width in pixels, a multiple of `tokenPx`. */
  width: number;
  /** Token grid rows = height / tokenPx. */
  rows: number;
  /** Token grid columns = width / tokenPx. */
  cols: number;
  /** Prompt tokens for this image: rows * (cols + 1) (`[IMG]`s plus one break/end per row). */
  tokens: number;
}

/** Python 3 `round()` on a float: nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function checkPositiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v <= 0) throw new LimitError(`${what} must be a positive integer (got ${v})`);
}

/**
 * Target size of an image of `height` x `width` source pixels. Throws `ImageError` for a source
 * size that is not a positive integer, `LimitError` for invalid options.
 */
export function sizeForImage(height: number, width: number, opts: SizeOptions): ImageSize {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
    throw new ImageError(`image size ${width}x${height} (WxH) is not a positive integer size`);
  }
  const { longestEdge: L, tokenPx, rounding = 'nearest' } = opts;
  checkPositiveInt(L, 'longestEdge');
  checkPositiveInt(tokenPx, 'tokenPx');
  if (rounding !== 'nearest' && rounding !== 'floor') {
    throw new LimitError(`rounding must be 'nearest' or 'floor' (got ${String(rounding)})`);
  }
  let h = height;
  let w = width;
  // Same float64 operations, in the same order, as the Python reference.
  const ratio = Math.max(h / L, w / L);
  if (ratio > 1) {
    const r = rounding === 'nearest' ? roundHalfEven : Math.floor;
    h = Math.max(r(h / ratio), 1);
    w = Math.max(r(w / ratio), 1);
  }
  const rows = Math.ceil(h / tokenPx);
  const cols = Math.ceil(w / tokenPx);
  return { height: rows * tokenPx, width: cols * tokenPx, rows, cols, tokens: rows * (cols + 1) };
}
