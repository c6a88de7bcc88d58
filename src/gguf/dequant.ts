/**
 * CPU dequantisation of ggml's blocks, bit-identical to ggml's `dequantize_row_*` (and to gguf-py,
 * which the fixtures show to be bit-identical to ggml): every product and sum is rounded to f32
 * exactly where ggml's C code rounds (`Math.fround` on the exact double result, which is the
 * correctly rounded f32 result for one operation). The result is a Float64Array holding those
 * f32 values; it is the reference the WGSL kernels are checked against.
 *
 * Block layouts (ggml-common.h), QK = elements per block:
 *   Q4_0 (32, 18 B): f16 d, u8 qs[16]; x[j] = (lo(qs[j]) - 8) d, x[j + 16] = (hi(qs[j]) - 8) d.
 *   Q4_1 (32, 20 B): f16 d, f16 m, u8 qs[16]; x = q d + m.
 *   Q5_0 (32, 22 B): f16 d, u32 qh, u8 qs[16]; the 5th bit of x[e] is bit e of qh; x = (q - 16) d.
 *   Q8_0 (32, 34 B): f16 d, i8 qs[32]; x = q d.
 *   Q4_K (256, 144 B): f16 d, f16 dmin, u8 scales[12] (8 pairs of 6-bit scale/min), u8 qs[128];
 *     in each 64-element chunk c, x[64c + l] uses lo(qs[32c + l]) with pair 2c and
 *     x[64c + 32 + l] hi(qs[32c + l]) with pair 2c + 1: x = (d sc) q - (dmin m).
 *   Q5_K (256, 176 B): as Q4_K plus u8 qh[32] before qs: bit s of qh[l] is the 5th bit of
 *     element l of sub-block s (32 elements each).
 *   Q6_K (256, 210 B): u8 ql[128], u8 qh[64], i8 scales[16], f16 d; x = (d sc) (q - 32), one
 *     scale per 16 elements (see `q6k`).
 */
import { FormatError } from '../errors.js';
import { f16BitsToF32 } from '../util/f16.js';
import { blockShape, typeName, type SupportedType } from './types.js';

const f = Math.fround;

/** Dequantises `n` elements of ggml type `type` (a SupportedType name) from `bytes`. */
export function dequantize(type: SupportedType, bytes: Uint8Array, n: number): Float64Array {
  const out = new Float64Array(n);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fn = DEQUANT[type];
  const shape = blockShape(TYPE_IDS[type])!;
  if (n % shape.elems !== 0) throw new FormatError(`${type}: ${n} elements are not a whole number of blocks of ${shape.elems}`);
  const blocks = n / shape.elems;
  if (bytes.byteLength < blocks * shape.bytes) {
    throw new FormatError(`${type}: ${n} elements need ${blocks * shape.bytes} bytes, got ${bytes.byteLength}`);
  }
  for (let b = 0; b < blocks; b++) fn(v, b * shape.bytes, out, b * shape.elems);
  return out;
}

const TYPE_IDS: Record<SupportedType, number> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14 };

/** The SupportedType name of a ggml type id, or a FormatError naming `what`. */
export function supportedType(id: number, what: string): SupportedType {
  const name = typeName(id);
  if (!(name in TYPE_IDS)) {
    throw new FormatError(`${what}: ggml type ${name} is not supported (supported: ${Object.keys(TYPE_IDS).join(', ')})`);
  }
  return name as SupportedType;
}

type BlockFn = (v: DataView, at: number, out: Float64Array, o: number) => void;

const h = (v: DataView, at: number) => f16BitsToF32(v.getUint16(at, true));

/** ggml's get_scale_min_k4: 6-bit scale and min number j (0..7) of a K-quant block's 12 bytes. */
export function scaleMinK4(v: DataView, at: number, j: number): [number, number] {
  const q = (i: number) => v.getUint8(at + i);
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

const DEQUANT: Record<SupportedType, BlockFn> = {
  F32: (v, at, out, o) => (out[o] = v.getFloat32(at, true)),
  F16: (v, at, out, o) => (out[o] = h(v, at)),
  Q4_0(v, at, out, o) {
    const d = h(v, at);
    for (let j = 0; j < 16; j++) {
      const q = v.getUint8(at + 2 + j);
      out[o + j] = f(((q & 0xf) - 8) * d);
      out[o + j + 16] = f(((q >> 4) - 8) * d);
    }
  },
  Q4_1(v, at, out, o) {
    const d = h(v, at);
    const m = h(v, at + 2);
    for (let j = 0; j < 16; j++) {
      const q = v.getUint8(at + 4 + j);
      out[o + j] = f(f((q & 0xf) * d) + m);
      out[o + j + 16] = f(f((q >> 4) * d) + m);
    }
  },
  Q5_0(v, at, out, o) {
    const d = h(v, at);
    const qh = v.getUint32(at + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = v.getUint8(at + 6 + j);
      out[o + j] = f((((q & 0xf) | (((qh >>> j) & 1) << 4)) - 16) * d);
      out[o + j + 16] = f((((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d);
    }
  },
  Q8_0(v, at, out, o) {
    const d = h(v, at);
    for (let j = 0; j < 32; j++) out[o + j] = f(v.getInt8(at + 2 + j) * d);
  },
  Q4_K(v, at, out, o) {
    const d = h(v, at);
    const dmin = h(v, at + 2);
    for (let c = 0; c < 4; c++) {
      for (let half = 0; half < 2; half++) {
        const [sc, m] = scaleMinK4(v, at + 4, 2 * c + half);
        const d1 = f(d * sc);
        const m1 = f(dmin * m);
        for (let l = 0; l < 32; l++) {
          const q = (v.getUint8(at + 16 + 32 * c + l) >> (4 * half)) & 0xf;
          out[o + 64 * c + 32 * half + l] = f(f(d1 * q) - m1);
        }
      }
    }
  },
  Q5_K(v, at, out, o) {
    const d = h(v, at);
    const dmin = h(v, at + 2);
    for (let c = 0; c < 4; c++) {
      for (let half = 0; half < 2; half++) {
        const s = 2 * c + half;
        const [sc, m] = scaleMinK4(v, at + 4, s);
        const d1 = f(d * sc);
        const m1 = f(dmin * m);
        for (let l = 0; l < 32; l++) {
          const lo = (v.getUint8(at + 48 + 32 * c + l) >> (4 * half)) & 0xf;
          const hi = (v.getUint8(at + 16 + l) >> s) & 1;
          out[o + 32 * s + l] = f(f(d1 * (lo + 16 * hi)) - m1);
        }
      }
    }
  },
  Q6_K(v, at, out, o) {
    const d = h(v, at + 208);
    for (let e = 0; e < 256; e++) {
      const [q, sc] = q6k(v, at, e);
      out[o + e] = f(f(d * sc) * q);
    }
  },
};

/**
 * Element e (0..255) of a Q6_K block: its signed 6-bit value q - 32 and its i8 scale. Half
 * n = e / 128 uses ql[64n..], qh[32n..], scales[8n..]; within it quarter k = (e % 128) / 32 and
 * l = e % 32: low 4 bits from ql[64n + l + 32 (k & 1)] (nibble k >> 1), high 2 bits from bits
 * 2k, 2k + 1 of qh[32n + l], scale scales[8n + l / 16 + 2k].
 */
export function q6k(v: DataView, at: number, e: number): [number, number] {
  const n = e >> 7;
  const k = (e >> 5) & 3;
  const l = e & 31;
  const lo = (v.getUint8(at + 64 * n + l + 32 * (k & 1)) >> (4 * (k >> 1))) & 0xf;
  const hi = (v.getUint8(at + 128 + 32 * n + l) >> (2 * k)) & 3;
  return [(lo | (hi << 4)) - 32, v.getInt8(at + 192 + 8 * n + (l >> 4) + 2 * k)];
}
