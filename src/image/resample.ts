/**
 * Pillow's BICUBIC resize, ported exactly: separable, Keys cubic with a = -0.5, support scaled by
 * the downscale factor (antialiasing), coefficients normalised per output pixel and quantised to
 * 22-bit fixed point, 8-bit intermediate between the horizontal and the vertical pass, rows the
 * vertical pass never reads skipped. Source: Pillow 9.4 `libImaging/Resample.c`
 * (`precompute_coeffs`, `normalize_coeffs_8bpc`, `ImagingResample{Horizontal,Vertical}_8bpc`,
 * `ImagingResampleInner`). Hugging Face's `PixtralImageProcessor` resizes with exactly this, so the
 * output equals the reference byte for byte (the browser's own resamplers differ by several u8
 * steps on average; see the numbers in `test/browser/image.test.ts`).
 *
 * Pure integer/float64 arithmetic, no DOM: runs in a worker, in Node, anywhere.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}
const SUPPORT = 2;

interface Coeffs {
  /** Taps per output pixel (stride of `k`). */
  ksize: number;
  /** First source index per output pixel. */
  min: Int32Array;
  /** Number of source pixels used per output pixel. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel. */
  k: Int32Array;
}

/** `precompute_coeffs` + `normalize_coeffs_8bpc` for the box (0, inSize). */
function coeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const min = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = bicubic((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    min[xx] = xmin;
    count[xx] = xmax;
  }
  return { ksize, min, count, k };
}

/** `clip8`: arithmetic shift right by PRECISION_BITS, clamped to 0..255. */
function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resize 8-bit RGB pixels with Pillow's BICUBIC. `src` is row-major with `srcStride` bytes per
 * pixel (3 for packed RGB, 4 for RGBA whose 4th byte is ignored); the result is packed RGB
 * (`dstW * dstH * 3` bytes). Equal sizes return a packed copy, as Pillow does.
 */
export function resizeBicubicRgb(
  src: Uint8Array | Uint8ClampedArray,
  srcW: number,
  srcH: number,
  srcStride: 3 | 4,
  dstW: number,
  dstH: number,
): Uint8Array {
  if (src.length < srcW * srcH * srcStride) throw new RangeError('resizeBicubicRgb: source buffer too small');
  const needH = dstW !== srcW;
  const needV = dstH !== srcH;
  const cv = coeffs(srcH, dstH);
  // Rows of the source the vertical pass reads (the horizontal pass only produces those).
  const yFirst = cv.min[0]!;
  const yLast = cv.min[dstH - 1]! + cv.count[dstH - 1]!;

  let img: Uint8Array | Uint8ClampedArray = src;
  let stride: number = srcStride;
  let rowOffset = 0; // source row that row 0 of `img` corresponds to
  let imgW = srcW;

  if (needH) {
    const ch = coeffs(srcW, dstW);
    const rows = needV ? yLast - yFirst : srcH;
    const y0 = needV ? yFirst : 0;
    const tmp = new Uint8Array(dstW * rows * 3);
    const { ksize, min, count, k } = ch;
    for (let y = 0; y < rows; y++) {
      const rowBase = (y + y0) * srcW * srcStride;
      const outBase = y * dstW * 3;
      for (let xx = 0; xx < dstW; xx++) {
        const kb = xx * ksize;
        const n = count[xx]!;
        let p = rowBase + min[xx]! * srcStride;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < n; x++, p += srcStride) {
          const c = k[kb + x]!;
          s0 += src[p]! * c;
          s1 += src[p + 1]! * c;
          s2 += src[p + 2]! * c;
        }
        const o = outBase + xx * 3;
        tmp[o] = clip8(s0);
        tmp[o + 1] = clip8(s1);
        tmp[o + 2] = clip8(s2);
      }
    }
    img = tmp;
    stride = 3;
    rowOffset = y0;
    imgW = dstW;
  }

  if (needV) {
    const out = new Uint8Array(imgW * dstH * 3);
    const { ksize, min, count, k } = cv;
    const rowBytes = imgW * stride;
    for (let yy = 0; yy < dstH; yy++) {
      const kb = yy * ksize;
      const n = count[yy]!;
      const base = (min[yy]! - rowOffset) * rowBytes;
      const outBase = yy * imgW * 3;
      for (let xx = 0; xx < imgW; xx++) {
        let p = base + xx * stride;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let y = 0; y < n; y++, p += rowBytes) {
          const c = k[kb + y]!;
          s0 += img[p]! * c;
          s1 += img[p + 1]! * c;
          s2 += img[p + 2]! * c;
        }
        const o = outBase + xx * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    return out;
  }
  if (needH) return img as Uint8Array;
  // Same size: packed copy.
  const out = new Uint8Array(srcW * srcH * 3);
  for (let i = 0, j = 0; i < out.length; i += 3, j += srcStride) {
    out[i] = src[j]!;
    out[i + 1] = src[j + 1]!;
    out[i + 2] = src[j + 2]!;
  }
  return out;
}
