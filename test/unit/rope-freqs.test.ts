import { describe, expect, it } from 'vitest';
import {
  llama4QueryScale, ropeInvFreq, visionRopeFreqs, yarnAttentionFactor, yarnCorrectionRange, yarnInvFreq,
} from '../../src/kernels/rope-freqs.js';

// The ministral3 fixture's rope_parameters (fixtures README, mistral3 section).
const FIX = { headDim: 32, theta: 100, factor: 16, originalMaxPositionEmbeddings: 16, betaFast: 1, betaSlow: 0.125 };

describe('rope frequencies (float64)', () => {
  it('plain inverse frequencies theta^(-2i/d)', () => {
    const f = ropeInvFreq(128, 1e9);
    expect(f.length).toBe(64);
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(Math.pow(1e9, -2 / 128), 15);
    expect(f[63]! / Math.pow(1e9, -126 / 128)).toBeCloseTo(1, 14);
  });

  it('YaRN correction range of the fixture: low 3, high 11', () => {
    expect(yarnCorrectionRange(FIX)).toEqual({ low: 3, high: 11 });
  });

  it('YaRN inverse frequencies: kept below low, divided by factor above high, linear blend between', () => {
    const base = ropeInvFreq(32, 100);
    const f = yarnInvFreq(FIX);
    for (let i = 0; i < 16; i++) {
      const ramp = Math.min(Math.max((i - 3) / 8, 0), 1);
      const want = base[i]! * (1 - ramp + ramp / 16);
      expect(f[i]! / want).toBeCloseTo(1, 14);
    }
    expect(f[2]).toBe(base[2]);
    expect(f[12]! / (base[12]! / 16)).toBeCloseTo(1, 14);
    expect(f[7]! / (base[7]! * (0.5 + 0.5 / 16))).toBeCloseTo(1, 14);
  });

  it('YaRN attention factor: 1.121751 for the fixture, 1 for mscale = mscale_all_dim', () => {
    expect(yarnAttentionFactor(16, 1, 0.5)).toBeCloseTo(1.121751, 6);
    expect(yarnAttentionFactor(40, 1, 1)).toBe(1);
    expect(yarnAttentionFactor(16, 0, 0)).toBeCloseTo(1 + 0.1 * Math.log(16), 12);
    expect(yarnAttentionFactor(1, 1, 0)).toBe(1);
  });

  it('Llama-4 query scale steps at multiples of orig', () => {
    expect(llama4QueryScale(0, 0.3, 16)).toBe(1);
    expect(llama4QueryScale(15, 0.3, 16)).toBe(1);
    expect(llama4QueryScale(16, 0.3, 16)).toBeCloseTo(1.2079, 4);
    expect(llama4QueryScale(47, 0.3, 16)).toBeCloseTo(1.3296, 4);
  });

  it('vision frequencies: rows take the even indices, columns the odd ones', () => {
    const { fh, fw } = visionRopeFreqs(16, 10000);
    const f = ropeInvFreq(16, 10000);
    expect(Array.from(fh)).toEqual([f[0], f[2], f[4], f[6]]);
    expect(Array.from(fw)).toEqual([f[1], f[3], f[5], f[7]]);
  });
});
