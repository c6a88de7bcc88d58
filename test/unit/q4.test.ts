/**
 * The q4g32 format's CPU side (src/quant/q4.ts): quantise / dequantise properties on Gaussian
 * weights, and the synthetic-weight helpers the GPU tests and the benchmark rely on
 * (test/kernels/ref/q4.ts) agreeing with the reference product.
 */
import { describe, expect, it } from 'vitest';
import {
  Q4_BITS_PER_WEIGHT,
  Q4_GROUP,
  dequantizeQ4,
  q4At,
  q4Bytes,
  q4MatVecRef,
  q4Supported,
  quantizeQ4,
} from '../../src/quant/q4.js';
import { f16BitsToF32 } from '../../src/util/f16.js';
import { randn } from '../helpers/random.js';
import { q4MatVecWithMag, synthQ4, synthRowDot } from '../kernels/ref/q4.js';

const N = 64;
const K = 160;

function nibble(qweight: Uint32Array, idx: number): number {
  return (qweight[idx >>> 3]! >>> (4 * (idx & 7))) & 0xf;
}

describe('q4g32 quantisation', () => {
  const w = randn(N * K, 42, 0.02);
  const m = quantizeQ4(w, N, K);
  const deq = dequantizeQ4(m);

  it('has the documented sizes: 4.5 bits per weight', () => {
    expect(m.qweight.length).toBe((N * K) / 8);
    expect(m.scales.length).toBe((N * K) / Q4_GROUP);
    expect(Q4_BITS_PER_WEIGHT).toBe(4.5);
    const b = q4Bytes(N, K);
    expect(((b.qweight + b.scales) * 8) / (N * K)).toBe(4.5);
  });

  it('puts the largest-magnitude element of every group exactly on level -8', () => {
    for (let g = 0; g < (N * K) / Q4_GROUP; g++) {
      let arg = g * Q4_GROUP;
      for (let i = g * Q4_GROUP; i < (g + 1) * Q4_GROUP; i++) if (Math.abs(w[i]!) > Math.abs(w[arg]!)) arg = i;
      expect(nibble(m.qweight, arg)).toBe(0);
      const s = f16BitsToF32(m.scales[g]!);
      expect(-8 * s).toBe(deq[arg]);
      // The only error at the extreme is the f16 rounding of the scale: half an f16 ulp.
      expect(Math.abs(deq[arg]! - w[arg]!)).toBeLessThanOrEqual(Math.abs(w[arg]!) * 2 ** -11);
    }
  });

  it('errs by at most half a step, except on the clamped +7 side (at most one step)', () => {
    let clamped = 0;
    for (let i = 0; i < N * K; i++) {
      const s = Math.abs(f16BitsToF32(m.scales[(i / Q4_GROUP) | 0]!));
      const err = Math.abs(w[i]! - deq[i]!);
      if (nibble(m.qweight, i) === 15) {
        // w / s may reach +8 (1 + 2^-11) but the top level is +7.
        expect(err).toBeLessThanOrEqual(s * (1 + 8 * 2 ** -11));
        if (err > s / 2) clamped++;
      } else {
        expect(err).toBeLessThanOrEqual((s / 2) * (1 + 1e-6));
      }
    }
    // Gaussian groups rarely have a near-opposite of their extreme: clamping is the exception.
    expect(clamped).toBeLessThan(N * K * 0.01);
  });

  it('uses both signs and all 16 levels', () => {
    const seen = new Set<number>();
    for (let i = 0; i < N * K; i++) seen.add(nibble(m.qweight, i));
    expect(seen.size).toBe(16);
  });

  it('q4At agrees with dequantizeQ4', () => {
    for (const [r, k] of [[0, 0], [3, 31], [17, 32], [N - 1, K - 1]] as const) expect(q4At(m, r, k)).toBe(deq[r * K + k]);
  });

  it('is idempotent: quantising the dequantised weights gives the same bits', () => {
    const again = quantizeQ4(deq, N, K);
    expect(Array.from(again.qweight)).toEqual(Array.from(m.qweight));
    expect(Array.from(again.scales)).toEqual(Array.from(m.scales));
  });

  it('maps an all-zero group to zero scale, level 0 (nibble 8) and exact zeros', () => {
    const z = new Float32Array(2 * 64);
    z.set(randn(32, 1), 32); // row 0: zeros then a normal group; row 1: all zeros
    const q = quantizeQ4(z, 2, 64);
    expect(Math.abs(f16BitsToF32(q.scales[0]!))).toBe(0);
    expect(q.qweight[0]).toBe(0x88888888);
    expect(q.qweight.subarray(8)).toEqual(new Uint32Array(8).fill(0x88888888));
    const d = dequantizeQ4(q);
    for (const i of [0, 31, 64, 127]) expect(Math.abs(d[i]!)).toBe(0);
    expect(d[40]).not.toBe(0);
  });

  it('rejects K that is not a multiple of 32', () => {
    expect(q4Supported(48)).toBe(false);
    expect(q4Supported(96)).toBe(true);
    expect(() => quantizeQ4(new Float32Array(2 * 48), 2, 48)).toThrow(/multiple of 32/);
    expect(() => quantizeQ4(new Float32Array(10), 1, 32)).toThrow();
  });
});

describe('synthetic q4 weights (test/kernels/ref/q4.ts)', () => {
  it('synthRowDot is q4MatVecRef of synthQ4, with the same error scale', () => {
    const rows = 9;
    const cols = 96;
    const m = synthQ4(rows, cols, 5);
    const x = randn(cols, 6);
    const ref = q4MatVecRef(m, x);
    const { mag } = q4MatVecWithMag(m, x);
    for (let r = 0; r < rows; r++) {
      const d = synthRowDot(cols, 5, r, x);
      expect(d.y).toBeCloseTo(ref[r]!, 10);
      expect(d.mag).toBeCloseTo(mag[r]!, 10);
    }
  });
});
