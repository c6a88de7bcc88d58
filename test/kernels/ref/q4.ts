/**
 * Float64 CPU references for the q4 kernels (built on `q4MatVecRef` / `dequantizeQ4` of
 * src/quant/q4.ts), the error scale their tolerances derive from, and synthetic q4 weights:
 * random nibbles and random f16 scales generated straight into GPU buffers from a counter hash,
 * so Nemo-sized matrices (lm_head: 131072 x 5120, 671M weights) upload in about a second and any
 * row can be recomputed on the CPU without keeping the matrix. Shared by tests and `bench/`.
 */
import { Q4_GROUP, dequantizeQ4, q4MatVecRef, type Q4Matrix } from '../../../src/quant/q4.js';
import { f16BitsToF32 } from '../../../src/util/f16.js';
import { allocQ4, type Q4Weight } from '../../../src/kernels/q4.js';
import { writeBuffer } from '../../../src/gpu/tensor.js';
import type { Gpu } from '../../../src/gpu/device.js';

/** f32 unit roundoff. */
export const U32 = 2 ** -24;

/**
 * y = W x (float64, `q4MatVecRef`) and, per row, the error scale of an f32 evaluation:
 * mag[r] = sum_k |w_rk x_k|, which bounds every partial sum the kernel forms (its dequantised
 * weights are exact, see shaders/q4_matvec.wgsl).
 */
export function q4MatVecWithMag(m: Q4Matrix, x: ArrayLike<number>): { y: Float64Array; mag: Float64Array } {
  const y = q4MatVecRef(m, x);
  const mag = new Float64Array(m.rows);
  const groups = m.cols / Q4_GROUP;
  for (let r = 0; r < m.rows; r++) {
    let acc = 0;
    for (let k = 0; k < m.cols; k++) {
      const idx = r * m.cols + k;
      const q = (m.qweight[idx >>> 3]! >>> (4 * (idx & 7))) & 0xf;
      acc += Math.abs(f16BitsToF32(m.scales[r * groups + ((k / Q4_GROUP) | 0)]!) * (q - 8) * x[k]!);
    }
    mag[r] = acc;
  }
  return { y, mag };
}

/** Y = X W^T in float64 and its error scale: in src/quant/q4.ts (the on-device check of the subgroup-matrix kernel uses it too). */
export { q4MatMulRef } from '../../../src/quant/q4.js';

// ---- synthetic weights -------------------------------------------------------------------

/** A 32-bit integer hash (lowbias32): word i of a synthetic matrix is mix(i + seed * phi). */
function mix(v: number): number {
  v ^= v >>> 16;
  v = Math.imul(v, 0x7feb352d);
  v ^= v >>> 15;
  v = Math.imul(v, 0x846ca68b);
  v ^= v >>> 16;
  return v >>> 0;
}

/** Word `i` (row-major over [rows, K/8]) of the synthetic matrix `seed`: 8 uniform nibbles. */
export function synthWord(seed: number, i: number): number {
  return mix((i + Math.imul(seed, 0x9e3779b9)) >>> 0);
}

/**
 * f16 bits of scale `i` (row-major over [rows, K/32]): random sign, magnitude in
 * [2^-7, 2^-5) (exponent field 8 or 9, random mantissa): the size of real Nemo scales.
 */
export function synthScaleBits(seed: number, i: number): number {
  const h = mix((i ^ Math.imul(seed + 1, 0x85ebca6b)) >>> 0);
  return ((h & 1) << 15) | ((8 + ((h >>> 11) & 1)) << 10) | ((h >>> 1) & 0x3ff);
}

/** The whole synthetic matrix on the CPU (small shapes only). */
export function synthQ4(rows: number, cols: number, seed: number): Q4Matrix {
  const qweight = new Uint32Array((rows * cols) / 8);
  for (let i = 0; i < qweight.length; i++) qweight[i] = synthWord(seed, i);
  const scales = new Uint16Array((rows * cols) / Q4_GROUP);
  for (let i = 0; i < scales.length; i++) scales[i] = synthScaleBits(seed, i);
  return { rows, cols, qweight, scales };
}

/**
 * Allocates a [rows, cols] q4 weight and fills it with the synthetic matrix `seed`, generating
 * at most `chunkWords` words at a time (no CPU copy of the whole matrix).
 */
export function uploadSynthQ4(
  gpu: Gpu,
  rows: number,
  cols: number,
  seed: number,
  label: string,
  maxBindingBytes?: number,
  chunkWords = 1 << 22,
): Q4Weight {
  const w = allocQ4(gpu, rows, cols, label, maxBindingBytes);
  const words = cols / 8;
  const groups = cols / Q4_GROUP;
  const fill = (buffer: GPUBuffer, first: number, count: number, gen: (i: number) => number, Arr: 'u32' | 'u16') => {
    const step = chunkWords * (Arr === 'u16' ? 2 : 1);
    for (let off = 0; off < count; off += step) {
      const n = Math.min(step, count - off);
      const chunk = Arr === 'u32' ? new Uint32Array(n) : new Uint16Array(n);
      for (let i = 0; i < n; i++) chunk[i] = gen(first + off + i);
      writeBuffer(gpu, buffer, off * (Arr === 'u32' ? 4 : 2), chunk);
    }
  };
  for (const p of w.parts) {
    fill(p.qweight, p.rowStart * words, p.rows * words, (i) => synthWord(seed, i), 'u32');
    fill(p.scales, p.rowStart * groups, p.rows * groups, (i) => synthScaleBits(seed, i), 'u16');
  }
  return w;
}

/** Row r of the synthetic matrix `seed` times x in float64, with the error scale of q4MatVecWithMag. */
export function synthRowDot(cols: number, seed: number, r: number, x: ArrayLike<number>): { y: number; mag: number } {
  const words = cols / 8;
  let y = 0;
  let mag = 0;
  for (let g = 0; g < cols / Q4_GROUP; g++) {
    const s = f16BitsToF32(synthScaleBits(seed, r * (cols / Q4_GROUP) + g));
    for (let wi = 0; wi < 4; wi++) {
      const word = synthWord(seed, r * words + g * 4 + wi);
      for (let j = 0; j < 8; j++) {
        const q = (word >>> (4 * j)) & 0xf;
        const xv = x[g * Q4_GROUP + wi * 8 + j]!;
        y += (q - 8) * s * xv;
        mag += Math.abs((q - 8) * s * xv);
      }
    }
  }
  return { y, mag };
}
