/**
 * The 4-bit weight format ("q4g32", format version 1) and its CPU reference: quantise,
 * dequantise, and a float64 matrix-vector product over quantised weights. The converter, the
 * GPU kernels and their tests all use these definitions; `docs/quantization.md` explains the
 * choice.
 *
 * A weight matrix W [N, K] (PyTorch `nn.Linear` layout: out x in, row-major) becomes
 *   qweight: u32 [N, K/8]   element k of row n is nibble (k % 8) of word (k / 8), low nibble first;
 *                           the nibble holds q in 0..15
 *   scales:  f16 [N, K/32]  one scale per group of 32 consecutive k in a row (raw IEEE half bits)
 * and w = (q - 8) * scale. Symmetric, 4.5 bits per weight. K must be a multiple of 32.
 * The scale is chosen so the group's largest-magnitude element lands exactly on level -8
 * (scale = m / -8 where m is that element, sign included), which uses all 16 levels.
 */
import { f16BitsToF32, f32ToF16Bits } from '../util/f16.js';

export const Q4_GROUP = 32;
export const Q4_FORMAT = 'q4g32' as const;
/** Bits per weight including scales: 4 + 16/32. */
export const Q4_BITS_PER_WEIGHT = 4 + 16 / Q4_GROUP;

export interface Q4Matrix {
  rows: number; // N
  cols: number; // K
  qweight: Uint32Array; // [N, K/8]
  scales: Uint16Array; // [N, K/32] f16 bits
}

export function q4Supported(cols: number): boolean {
  return cols > 0 && cols % Q4_GROUP === 0;
}

export function q4Bytes(rows: number, cols: number): { qweight: number; scales: number } {
  return { qweight: (rows * cols) / 2, scales: (rows * cols * 2) / Q4_GROUP };
}

/** Quantises rows [rowStart, rowStart + rows) of a row-major f32 matrix with `cols` columns. */
export function quantizeQ4(w: ArrayLike<number>, rows: number, cols: number): Q4Matrix {
  if (!q4Supported(cols)) throw new Error(`q4: K=${cols} is not a multiple of ${Q4_GROUP}`);
  if (w.length !== rows * cols) throw new Error(`q4: ${w.length} values for [${rows}, ${cols}]`);
  const groups = cols / Q4_GROUP;
  const qweight = new Uint32Array((rows * cols) / 8);
  const scales = new Uint16Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const base = r * cols + g * Q4_GROUP;
      let m = 0;
      for (let i = 0; i < Q4_GROUP; i++) {
        const v = w[base + i]!;
        if (Math.abs(v) > Math.abs(m)) m = v;
      }
      const sBits = f32ToF16Bits(m / -8);
      const s = f16BitsToF32(sBits);
      scales[r * groups + g] = sBits;
      const inv = s === 0 ? 0 : 1 / s;
      for (let i = 0; i < Q4_GROUP; i += 8) {
        let word = 0;
        for (let j = 0; j < 8; j++) {
          const q = Math.min(15, Math.max(0, Math.round(w[base + i + j]! * inv) + 8));
          word |= q << (4 * j);
        }
        qweight[(base + i) / 8] = word >>> 0;
      }
    }
  }
  return { rows, cols, qweight, scales };
}

/** Element (r, k) as the GPU sees it. */
export function q4At(m: Q4Matrix, r: number, k: number): number {
  const idx = r * m.cols + k;
  const q = (m.qweight[idx >>> 3]! >>> (4 * (idx & 7))) & 0xf;
  return (q - 8) * f16BitsToF32(m.scales[r * (m.cols / Q4_GROUP) + ((k / Q4_GROUP) | 0)]!);
}

export function dequantizeQ4(m: Q4Matrix): Float32Array {
  const out = new Float32Array(m.rows * m.cols);
  const groups = m.cols / Q4_GROUP;
  for (let r = 0; r < m.rows; r++) {
    for (let g = 0; g < groups; g++) {
      const s = f16BitsToF32(m.scales[r * groups + g]!);
      for (let i = 0; i < Q4_GROUP; i++) {
        const idx = r * m.cols + g * Q4_GROUP + i;
        out[idx] = (((m.qweight[idx >>> 3]! >>> (4 * (idx & 7))) & 0xf) - 8) * s;
      }
    }
  }
  return out;
}

/** y = W x in float64 over the dequantised weights: the reference for the q4 GPU kernels. */
export function q4MatVecRef(m: Q4Matrix, x: ArrayLike<number>): Float64Array {
  const w = dequantizeQ4(m);
  const y = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let acc = 0;
    for (let k = 0; k < m.cols; k++) acc += w[r * m.cols + k]! * x[k]!;
    y[r] = acc;
  }
  return y;
}

/**
 * Y [M, N] = X [M, K] W [N, K]^T in float64 over the dequantised weights, and
 * mag [M, N] = sum_k |w_nk x_mk| (the matmul sums exact dequantised products, nothing else).
 */
export function q4MatMulRef(m: Q4Matrix, X: ArrayLike<number>, M: number): { y: Float64Array; mag: Float64Array } {
  const w = dequantizeQ4(m);
  const K = m.cols;
  const N = m.rows;
  const y = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = w[n * K + k]! * X[i * K + k]!;
        acc += p;
        a += Math.abs(p);
      }
      y[i * N + n] = acc;
      mag[i * N + n] = a;
    }
  }
  return { y, mag };
}
