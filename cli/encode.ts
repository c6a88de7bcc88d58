/**
 * Per-chunk value transforms of the converter: source bytes (BF16/F16/F32, little-endian) ->
 * f32 values, the RoPE row reorder for native q/k, and f32 -> stored bytes (f32, f16, q4 via
 * `quantizeQ4`). A chunk is a run of whole rows of one tensor; nothing here sees a whole tensor.
 * Functions take an optional output array so the converter can reuse its scratch buffers
 * (allocating fresh 32 MB arrays per chunk lets garbage pile up faster than V8 frees it).
 */
import { f16BitsToF32, f32ToF16Bits } from '../src/util/f16.js';
import { quantizeQ4 } from '../src/quant/q4.js';
import type { SourceDType } from './safetensors.js';

let f16Table: Float32Array | undefined;

function sized<T extends Float32Array | Uint16Array>(out: T | undefined, n: number, make: (n: number) => T): T {
  if (!out) return make(n);
  if (out.length < n) throw new RangeError(`scratch of ${out.length} < ${n} elements`);
  return out.subarray(0, n) as T;
}

/** Decodes little-endian source bytes to f32 (F32 input is viewed in place when aligned). */
export function decodeToF32(bytes: Uint8Array, dtype: SourceDType, out?: Float32Array): Float32Array {
  switch (dtype) {
    case 'F32': {
      if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    }
    case 'BF16': {
      if (bytes.byteOffset % 2 !== 0) bytes = bytes.slice();
      // bf16 is the top half of an f32: a shift is exact.
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      const f = sized(out, src.length, (n) => new Float32Array(n));
      const dst = new Uint32Array(f.buffer, f.byteOffset, f.length);
      for (let i = 0; i < src.length; i++) dst[i] = src[i]! << 16;
      return f;
    }
    case 'F16': {
      if (bytes.byteOffset % 2 !== 0) bytes = bytes.slice();
      if (!f16Table) {
        f16Table = new Float32Array(65536);
        for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
      }
      const t = f16Table;
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      const f = sized(out, src.length, (n) => new Float32Array(n));
      for (let i = 0; i < src.length; i++) f[i] = t[src[i]!]!;
      return f;
    }
  }
}

/**
 * Hugging Face's `permute_for_rope` on a block of whole heads: Mistral's native checkpoints keep
 * q/k rows in interleaved (GPT-J) order, HF's in rotate-half order. With head size d, HF row
 * `h*d + a*(d/2) + b` is native row `h*d + 2b + a` (a in {0,1}, b < d/2).
 */
export function permuteForRope(w: Float32Array, rows: number, cols: number, headDim: number, out?: Float32Array): Float32Array {
  if (rows % headDim !== 0 || headDim % 2 !== 0) throw new Error(`permuteForRope: ${rows} rows are not whole heads of ${headDim}`);
  const o = sized(out, rows * cols, (n) => new Float32Array(n));
  const half = headDim / 2;
  for (let h = 0; h < rows; h += headDim) {
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < half; b++) {
        const dst = (h + a * half + b) * cols;
        const src = (h + 2 * b + a) * cols;
        o.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return o;
}

export function encodeF32(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * f32 -> f16 bits, round to nearest even: bit-identical to `f32ToF16Bits` (tested), but on the
 * raw bits with no per-value call, ~5x faster. Normal halves round by adding 0xfff plus the
 * lowest kept bit before dropping 13 mantissa bits (a carry into the exponent, up to infinity, is
 * the correct rounding); the rare results that are subnormal halves or zero take the reference.
 */
export function encodeF16(v: Float32Array, out?: Uint16Array): Uint8Array {
  const o = sized(out, v.length, (n) => new Uint16Array(n));
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    const a = x & 0x7fffffff;
    let h: number;
    if (a >= 0x47800000) h = a > 0x7f800000 ? 0x7e00 : 0x7c00; // >= 65536, inf: inf; NaN: quiet NaN
    else if (a < 0x38800000) h = f32ToF16Bits(v[i]!) & 0x7fff; // below 2^-14: subnormal half
    else h = (a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13;
    o[i] = ((x >>> 16) & 0x8000) | h;
  }
  return new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
}

/** q4g32 of a row chunk: packed nibbles and f16 scales, as separate byte streams. */
export function encodeQ4(v: Float32Array, rows: number, cols: number): { qweight: Uint8Array; scales: Uint8Array } {
  const q = quantizeQ4(v, rows, cols);
  return { qweight: new Uint8Array(q.qweight.buffer), scales: new Uint8Array(q.scales.buffer) };
}
