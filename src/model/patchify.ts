/**
 * CPU patchify: normalised CHW images become the patch rows the vision encoder's first matmul
 * reads, [patches, C * p * p] in PyTorch conv-weight order (c, ky, kx), patches row-major per
 * image, images concatenated. The pixels cross to the GPU once either way, so rearranging them
 * while packing the upload costs nothing extra.
 */
import { ImageError } from '../errors.js';

export interface EncoderImage {
  /** Normalised CHW pixels [C, height, width]. */
  pixels: Float32Array;
  height: number;
  width: number;
}

export interface Grid {
  rows: number;
  cols: number;
}

export function gridOf(img: EncoderImage, patch: number): Grid {
  if (img.height % patch || img.width % patch || img.height <= 0 || img.width <= 0) {
    throw new ImageError(`image ${img.width}x${img.height} is not a positive multiple of the patch size ${patch}`);
  }
  return { rows: img.height / patch, cols: img.width / patch };
}

/** Writes the patch rows of all images into `out` (length >= patches * C * p * p). */
export function patchify(images: readonly EncoderImage[], patch: number, channels: number, out: Float32Array): number {
  const rowLen = channels * patch * patch;
  let row = 0;
  for (const img of images) {
    const { rows, cols } = gridOf(img, patch);
    const { height: H, width: W, pixels } = img;
    if (pixels.length !== channels * H * W) {
      throw new ImageError(`image pixels hold ${pixels.length} values, expected ${channels}x${H}x${W}`);
    }
    for (let gr = 0; gr < rows; gr++) {
      for (let gc = 0; gc < cols; gc++, row++) {
        let o = row * rowLen;
        for (let c = 0; c < channels; c++) {
          for (let ky = 0; ky < patch; ky++) {
            const src = c * H * W + (gr * patch + ky) * W + gc * patch;
            out.set(pixels.subarray(src, src + patch), o);
            o += patch;
          }
        }
      }
    }
  }
  return row;
}
