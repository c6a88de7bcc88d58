/**
 * Float64 CPU references for the GGUF block kernels (built on `dequantize`, the bit-exact ggml
 * dequantisation of src/gguf/dequant.ts), the error scale their tolerances derive from, and
 * synthetic weights in every supported block format: random quant bytes with sane f16 scales
 * (random bytes would make some scales NaN or huge). Shared by tests and `bench/`.
 */
import { dequantize } from '../../../src/gguf/dequant.js';
import { GGML_TYPE, blockShape, type SupportedType } from '../../../src/gguf/types.js';
import { f32ToF16Bits } from '../../../src/util/f16.js';
import { rng } from '../../helpers/random.js';

/** f32 unit roundoff. */
export const U32 = 2 ** -24;

/** Byte offsets of each block's f16 scale fields (d, dmin, m), by type. */
const SCALE_FIELDS: Partial<Record<SupportedType, number[]>> = {
  Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q8_0: [0], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
};

/** Bytes of the quantised payload (zeroed to read back the per-element offsets), by type. */
const PAYLOAD: Partial<Record<SupportedType, [number, number]>> = { Q4_1: [4, 20], Q4_K: [16, 144], Q5_K: [16, 176] };

/** A random [rows, cols] weight of `type`, as GGUF stores it (rows of whole blocks). */
export function synthGguf(type: SupportedType, rows: number, cols: number, seed: number): Uint8Array {
  const b = blockShape(GGML_TYPE[type])!;
  const n = rows * cols;
  const bytes = new Uint8Array((n / b.elems) * b.bytes);
  const u = rng(seed);
  const v = new DataView(bytes.buffer);
  if (type === 'F32') {
    for (let i = 0; i < n; i++) v.setFloat32(4 * i, 2 * u() - 1, true);
    return bytes;
  }
  if (type === 'F16') {
    for (let i = 0; i < n; i++) v.setUint16(2 * i, f32ToF16Bits(2 * u() - 1), true);
    return bytes;
  }
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(u() * 256);
  // Scales of either sign and a spread of magnitudes (K-quant mins too: dmin may be negative).
  const fields = SCALE_FIELDS[type]!;
  for (let blk = 0; blk < n / b.elems; blk++) {
    for (const f of fields) v.setUint16(blk * b.bytes + f, f32ToF16Bits((u() < 0.5 ? -1 : 1) * 2 ** (-12 + 6 * u())), true);
  }
  return bytes;
}

export function dequantizeRows(type: SupportedType, bytes: Uint8Array, rows: number, cols: number): Float64Array {
  return dequantize(type, bytes, rows * cols);
}

/** |m| per element: the value of a zero quant (K-quants, Q4_1), 0 where the format has none. */
function offsets(type: SupportedType, bytes: Uint8Array, n: number): Float64Array {
  const range = PAYLOAD[type];
  if (!range) return new Float64Array(n);
  const bb = blockShape(GGML_TYPE[type])!.bytes;
  const zeroed = bytes.slice();
  for (let at = 0; at < zeroed.length; at += bb) zeroed.fill(0, at + range[0], at + range[1]);
  return dequantize(type, zeroed, n).map(Math.abs);
}

/**
 * y = W x in float64 over the dequantised weights and, per row, the error scale of the f32
 * evaluation: mag[r] = sum_k (|w_rk| + 2 |m_rk|) |x_k|. The kernels form each octet as
 * s (q . x) - m sum(x), whose partial sums are bounded by that (|s q| <= |w| + |m|).
 */
export function ggufMatVecRef(type: SupportedType, bytes: Uint8Array, rows: number, cols: number, x: ArrayLike<number>) {
  const w = dequantizeRows(type, bytes, rows, cols);
  const m = offsets(type, bytes, rows * cols);
  const y = new Float64Array(rows);
  const mag = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    let a = 0;
    for (let k = 0; k < cols; k++) {
      const i = r * cols + k;
      s += w[i]! * x[k]!;
      a += (Math.abs(w[i]!) + 2 * m[i]!) * Math.abs(x[k]!);
    }
    y[r] = s;
    mag[r] = a;
  }
  return { y, mag, w };
}
