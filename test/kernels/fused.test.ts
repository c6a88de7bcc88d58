/**
 * Decode fusions of the q4 matvec shader against float64 CPU references: gate/up + SiLU in one
 * dispatch (`q4MatVecGateUp`) and up to three weights with the same K in one dispatch
 * (`q4MatVecMulti`, the q/k/v projections), in every work split, awkward sizes and the real Nemo
 * shapes (5120 -> 2 x 14336 gate/up; 5120 -> 4096 + 1024 + 1024 q/k/v) with sampled rows.
 *
 * Tolerances, with u = 2^-24 and C = 4 as in q4.test.ts:
 * - a projection row r: |got - ref| <= E_r = C u sqrt(K) mag_r, mag_r = sum_k |w_rk x_k|
 *   (exact dequantisation, f32 rounding of the sums only; see q4.test.ts), plus half an f16 ulp
 *   (2^-11 |ref|) for f16 output.
 * - gate/up: out = silu(g~) u~ with |g~ - g| <= Eg, |u~ - u| <= Eu (the bound above, per row).
 *   Propagated: |silu(g~) - silu(g)| <= 1.1 Eg (|silu'| <= 1.0998) and the product adds
 *   |silu(g)| Eu + 1.1 Eg (|u| + Eu); the SiLU evaluation itself errs by (9 + 2|g~|) u relative
 *   (WGSL exp: 3 + 2|x| ULP, then +, / and *; see elementwise.test.ts), applied to the bound of
 *   |silu(g~) u~|; f16 output adds 2^-11 |ref|; results below the smallest normal f32 may flush.
 * - RMSNorm folded in (NORM variants): see `foldedNormRel`.
 * Each check is shown to fail on a plausible bug (gate and up swapped, a weight's rows shifted,
 * the norm weight ignored).
 */
import { describe, expect, it } from 'vitest';
import { record, type Ctx } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { quantizeQ4, type Q4Matrix } from '../../src/quant/q4.js';
import { roundF16 } from '../../src/util/f16.js';
import {
  canUseSubgroups,
  defaultQ4MatVecConfig,
  destroyQ4,
  q4MatVec,
  q4MatVecGateUp,
  q4MatVecMulti,
  uploadQ4,
  type Q4MatVecConfig,
  type Q4Weight,
} from '../../src/kernels/q4.js';
import { addInPlace } from '../../src/kernels/add.js';
import { rmsnorm } from '../../src/kernels/rmsnorm.js';
import { activationDtypes, getGpu, realShapes } from '../helpers/gpu.js';
import { readF32, upload } from '../helpers/act.js';
import { randn } from '../helpers/random.js';
import { U32, q4MatVecWithMag, synthRowDot, uploadSynthQ4 } from './ref/q4.js';
import { C, FTZ, checkTol, foldedNormRel, gateUpRef, normRef, projErr, type GateUpRef } from './ref/fused-bounds.js';

type Act = 'f32' | 'f16';

/** The matvec work splits to test on this adapter (the CPU default first). */
function configs(gpu: Gpu): (Q4MatVecConfig & { name: string })[] {
  const out: (Q4MatVecConfig & { name: string })[] = [
    { name: 'rows per thread, intcvt', wg: 64, tpr: 1, subgroups: false, pairs: false, intcvt: true },
    { name: 'rows per thread, pairs', wg: 32, tpr: 1, subgroups: false, pairs: true, intcvt: false },
    { name: 'shared tpr=4, pairs, intcvt', wg: 64, tpr: 4, subgroups: false, pairs: true, intcvt: true },
    { name: 'shared tpr=32, pairs', wg: 128, tpr: 32, subgroups: false, pairs: true, intcvt: false },
  ];
  if (canUseSubgroups(gpu, 32)) out.push({ name: 'subgroups tpr=32, pairs', wg: 128, tpr: 32, subgroups: true, pairs: true, intcvt: false });
  return out;
}

/** Per-row projection references with the bound C u sqrt(K) mag (+ f16 store). */
function projRefs(y: ArrayLike<number>, mag: ArrayLike<number>, K: number, dtype: Act): GateUpRef[] {
  return Array.from({ length: y.length }, (_, i) => ({
    ref: y[i]!,
    tol: C * U32 * Math.sqrt(K) * mag[i]! + (dtype === 'f16' ? 2 ** -11 * Math.abs(y[i]!) : 0),
  }));
}

function quantized(N: number, K: number, seed: number): Q4Matrix {
  return quantizeQ4(randn(N * K, seed), N, K);
}

describe('q4 matvec gate/up + SiLU (one dispatch)', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  async function run(gate: Q4Weight, up: Q4Weight, xv: Float32Array, dtype: Act, config?: Q4MatVecConfig, yOffset = 0, yLen = gate.rows) {
    const x = upload(gpu, xv, dtype, 'x');
    const y = upload(gpu, new Float32Array(yLen).fill(1234), dtype, 'y');
    record(gpu, 'gate_up', (ctx) => q4MatVecGateUp(ctx, gate, up, x, y, { yOffset, config }));
    const out = await readF32(y);
    x.destroy();
    y.destroy();
    return out;
  }

  for (const config of configs(gpu)) {
    for (const dtype of dtypes) {
      // K: 1, 3, 5 groups (odd counts: the odd f16 of a scale pair); N: not multiples of the
      // 4-row block nor of a workgroup's rows.
      it(`${config.name}, ${dtype}: K x N in {32,96,160} x {1,7,33,257}`, async () => {
        let worst = 0;
        for (const K of [32, 96, 160]) {
          for (const N of [1, 7, 33, 257]) {
            const mg = quantized(N, K, N * 1000 + K);
            const mu = quantized(N, K, N * 1000 + K + 1);
            const xv = randn(K, K + 7);
            if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
            const [gate, up] = [uploadQ4(gpu, mg, 'gate'), uploadQ4(gpu, mu, 'up')];
            const got = await run(gate, up, xv, dtype, config);
            destroyQ4(gate);
            destroyQ4(up);
            const g = q4MatVecWithMag(mg, xv);
            const u = q4MatVecWithMag(mu, xv);
            const refs = Array.from({ length: N }, (_, i) => gateUpRef(g.y[i]!, g.mag[i]!, u.y[i]!, u.mag[i]!, K, dtype));
            worst = Math.max(worst, checkTol(got, refs, `N=${N} K=${K}`));
          }
        }
        console.log(`q4 gate/up ${config.name} ${dtype}: worst err ${worst.toFixed(3)} x tol`);
      });
    }
  }

  it('writes at the output offset only, and the check catches gate and up swapped', async () => {
    const [N, K] = [33, 160];
    const mg = quantized(N, K, 71);
    const mu = quantized(N, K, 72);
    const xv = randn(K, 73);
    const [gate, up] = [uploadQ4(gpu, mg, 'gate'), uploadQ4(gpu, mu, 'up')];
    const got = await run(gate, up, xv, 'f32', undefined, 3, N + 5);
    expect([got[0], got[1], got[2], got[N + 3], got[N + 4]]).toEqual([1234, 1234, 1234, 1234, 1234]);
    const g = q4MatVecWithMag(mg, xv);
    const u = q4MatVecWithMag(mu, xv);
    const refs = Array.from({ length: N }, (_, i) => gateUpRef(g.y[i]!, g.mag[i]!, u.y[i]!, u.mag[i]!, K, 'f32'));
    checkTol(got, refs, 'offset 3', (i) => i + 3);
    const swapped = Array.from({ length: N }, (_, i) => gateUpRef(u.y[i]!, u.mag[i]!, g.y[i]!, g.mag[i]!, K, 'f32'));
    expect(() => checkTol(got, swapped, 'swapped', (i) => i + 3)).toThrow();
    destroyQ4(gate);
    destroyQ4(up);
  });

  it('rejects split weights and mismatched shapes', async () => {
    const K = 96;
    const a = uploadQ4(gpu, quantized(40, K, 1), 'a', 16 * (K / 2));
    const b = uploadQ4(gpu, quantized(40, K, 2), 'b');
    const c = uploadQ4(gpu, quantized(41, K, 3), 'c');
    const x = Tensor.empty(gpu, [K], 'f32', 'x');
    const y = Tensor.empty(gpu, [41], 'f32', 'y');
    expect(() => record(gpu, 'split', (ctx) => q4MatVecGateUp(ctx, a, b, x, y))).toThrow(/row parts/);
    expect(() => record(gpu, 'shape', (ctx) => q4MatVecGateUp(ctx, b, c, x, y))).toThrow(/differ/);
    gpu.check();
    for (const w of [a, b, c]) destroyQ4(w);
    x.destroy();
    y.destroy();
  });

  it.runIf(realShapes)('Nemo 5120 -> 2 x 14336: synthetic weights, sampled rows', async () => {
    const [K, N] = [5120, 14336];
    const gate = uploadSynthQ4(gpu, N, K, 11, 'gate');
    const up = uploadSynthQ4(gpu, N, K, 12, 'up');
    const xv = randn(K, 13);
    const got = await run(gate, up, xv, 'f32');
    const rows = [0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1];
    for (let i = 1; rows.length < 48; i++) rows.push(Math.floor((i * (N - 1)) / 41));
    const refs = rows.map((r) => {
      const g = synthRowDot(K, 11, r, xv);
      const u = synthRowDot(K, 12, r, xv);
      return gateUpRef(g.y, g.mag, u.y, u.mag, K, 'f32');
    });
    const worst = checkTol(got, refs, '5120->2x14336', (i) => rows[i]!);
    console.log(`q4 gate/up Nemo: worst err ${worst.toFixed(3)} x tol`);
    destroyQ4(gate);
    destroyQ4(up);
  });
});

describe('q4 matvec of up to three weights (q/k/v, one dispatch)', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  async function run(ws: Q4Weight[], offsets: number[], xv: Float32Array, dtype: Act, yLen: number, config?: Q4MatVecConfig) {
    const x = upload(gpu, xv, dtype, 'x');
    const y = upload(gpu, new Float32Array(yLen).fill(1234), dtype, 'y');
    record(gpu, 'qkv', (ctx) => q4MatVecMulti(ctx, ws, x, y, offsets, { config }));
    const out = await readF32(y);
    x.destroy();
    y.destroy();
    return out;
  }

  for (const config of configs(gpu)) {
    for (const dtype of dtypes) {
      // Row counts not multiples of 4 (a weight's last block is partial) nor of a workgroup;
      // one and two weights too. Outputs packed with a gap of 2 between them (left untouched).
      it(`${config.name}, ${dtype}: K in {32,160}, rows {1 | 7,33,257 | 5,1,130}`, async () => {
        let worst = 0;
        for (const K of [32, 160]) {
          for (const rows of [[1], [7, 33, 257], [5, 1, 130], [64, 3]]) {
            const ms = rows.map((N, i) => quantized(N, K, 500 + N * 7 + K + i));
            const ws = ms.map((m, i) => uploadQ4(gpu, m, `w${i}`));
            const offsets: number[] = [];
            let end = 1;
            for (const N of rows) {
              offsets.push(end);
              end += N + 2;
            }
            const xv = randn(K, K + rows.length);
            if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
            const got = await run(ws, offsets, xv, dtype, end, config);
            ws.forEach(destroyQ4);
            const untouched = [0, ...offsets.map((o, i) => o + rows[i]!), ...offsets.map((o, i) => o + rows[i]! + 1)];
            expect(untouched.map((i) => got[i])).toEqual(untouched.map(() => 1234));
            ms.forEach((m, i) => {
              const { y, mag } = q4MatVecWithMag(m, xv);
              worst = Math.max(worst, checkTol(got, projRefs(y, mag, K, dtype), `K=${K} rows ${rows} weight ${i}`, (r) => r + offsets[i]!));
            });
          }
        }
        console.log(`q4 qkv ${config.name} ${dtype}: worst err ${worst.toFixed(3)} x tol`);
      });
    }
  }

  it('equals three q4MatVec dispatches exactly; the check catches a shifted row', async () => {
    const K = 96;
    const rows = [40, 9, 9];
    const ms = rows.map((N, i) => quantized(N, K, 900 + i));
    const ws = ms.map((m, i) => uploadQ4(gpu, m, `w${i}`));
    const xv = randn(K, 901);
    const got = await run(ws, [0, 40, 49], xv, 'f32', 58);
    const x = upload(gpu, xv, 'f32', 'x');
    const y = Tensor.empty(gpu, [58], 'f32', 'y');
    record(gpu, 'unfused', (ctx) => ws.forEach((w, i) => q4MatVec(ctx, w, x, y, { yOffset: [0, 40, 49][i]! })));
    expect(Array.from(got)).toEqual(Array.from((await y.read()) as Float32Array));
    const { y: ref, mag } = q4MatVecWithMag(ms[1]!, xv);
    expect(() => checkTol(got, projRefs(ref, mag, K, 'f32'), 'shifted', (r) => r + 41)).toThrow();
    ws.forEach(destroyQ4);
    x.destroy();
    y.destroy();
  });

  it.runIf(realShapes)('Nemo 5120 -> 4096 + 1024 + 1024: synthetic weights, sampled rows', async () => {
    const K = 5120;
    const rows = [4096, 1024, 1024];
    const seeds = [21, 22, 23];
    const offsets = [0, 4096, 5120];
    const ws = rows.map((N, i) => uploadSynthQ4(gpu, N, K, seeds[i]!, `nemo${i}`));
    const xv = randn(K, 24);
    const got = await run(ws, offsets, xv, 'f32', 6144);
    let worst = 0;
    rows.forEach((N, i) => {
      const sample = [0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1];
      for (let j = 1; sample.length < 32; j++) sample.push(Math.floor((j * (N - 1)) / 25));
      const refs = sample.map((r) => {
        const d = synthRowDot(K, seeds[i]!, r, xv);
        return { ref: d.y, tol: C * U32 * Math.sqrt(K) * d.mag };
      });
      worst = Math.max(worst, checkTol(got, refs, `weight ${i}`, (j) => offsets[i]! + sample[j]!));
    });
    console.log(`q4 qkv Nemo: worst err ${worst.toFixed(3)} x tol`);
    ws.forEach(destroyQ4);
  });
});

describe('decoder decode step with the fusions (pixtral-tiny-a fixtures)', async () => {
  const gpu = await getGpu();
  // Loaded here rather than at the top: the fixture is written by test/global-setup.ts.
  const { loadFixtureModel } = await import('../golden/load.js');
  const { casePrompt, loadCase } = await import('../golden/cases.js');
  const { expectSameLogits, greedyDecode, stepDispatches } = await import('../helpers/decode.js');

  /** Dispatches per layer of one decode step at position `pos`. */
  const layerDispatches = (m: import('../../src/model/vlm.js').VisionLanguageModel, pos: number) => stepDispatches(gpu, m, pos) / m.config.text.numLayers;

  // q4: both fusions; f32 (dense): gate/up only (q/k/v stay three matvecs).
  it.each([
    ['pixtral-tiny-a-q4', { qkv: true, gateUp: true }],
    ['pixtral-tiny-a-f32', { qkv: false, gateUp: true }],
  ] as const)('%s decodes like the unfused kernels (bit-identically on SwiftShader), and like a prefill of the same tokens', async (fixture, fusions) => {
    const f = await loadFixtureModel(gpu, fixture, { maxContext: 64, maxChunk: 32 });
    try {
      const m = f.model;
      // The fusions this fixture takes (else this test would compare the unfused path with itself).
      expect(m.decoder.decodeFusions()).toEqual(fusions);
      const c = await loadCase('pixtral-tiny-a', 'text_only');
      const prompt = casePrompt(c, m.config.tokens.img, m.config.vision.patchSize);
      const steps = 6;
      const fused = await greedyDecode(m, prompt, steps, true);
      const plain = await greedyDecode(m, prompt, steps, false);
      // Greedy tokens equal; logits as `expectSameLogits` says.
      expect(fused.ids).toEqual(plain.ids);
      expectSameLogits(gpu, fused.logits, plain.logits);
      // Against a prefill of prompt + generated tokens (the tiled q4_matmul, other summation
      // order): logits agree to f32 rounding through the layers. Bound: 1e-4 of the logits' RMS
      // per element (observed ~1e-6, printed); a wrong k/v/q offset or rope head count in the
      // packed decode path changes logits by O(RMS).
      const all = await m.prefill({ ids: [...prompt.ids, ...fused.ids.slice(0, steps - 1)], images: prompt.images }, { returnLogits: true });
      const V = m.config.text.vocabSize;
      let worst = 0;
      for (let s = 0; s < steps - 1; s++) {
        const row = all.logits!.subarray((prompt.ids.length + s) * V, (prompt.ids.length + s + 1) * V);
        const got = fused.logits[s]!;
        const rms = Math.sqrt(row.reduce((a, v) => a + v * v, 0) / V);
        for (let i = 0; i < V; i++) {
          const r = Math.abs(got[i]! - row[i]!) / rms;
          if (!(r <= 1e-4)) expect.fail(`step ${s} logit ${i}: decode ${got[i]} vs prefill ${row[i]} (${r.toExponential(2)} x RMS)`);
          worst = Math.max(worst, r);
        }
      }
      console.log(`${fixture} fused decode vs prefill: worst ${worst.toExponential(2)} x logit RMS`);
    } finally {
      f.model.destroy();
    }
  });

  it('q4 past 256 keys (attention with RoPE and the cache append folded in): decodes like the unfused kernels; 5 dispatches per layer up to 256 keys, 6 beyond on GPUs (split-K), 5 on CPU adapters (one pass)', async () => {
    const f = await loadFixtureModel(gpu, 'pixtral-tiny-a-q4', { maxContext: 512, maxChunk: 64 });
    try {
      const m = f.model;
      // The default by adapter class (folded on GPUs, a dispatch of its own on CPU adapters).
      expect(m.decoder.ropeInAttention).toBe(!gpu.isSoftware);
      const counts = () => [10, 255, 256, 400].map((pos) => layerDispatches(m, pos));
      // Past 256 keys, split-K's combine is a dispatch more where attention splits (GPUs).
      const past = gpu.isSoftware ? 0 : 1;
      m.decoder.ropeInAttention = false;
      expect(counts()).toEqual([6, 6, 6 + past, 6 + past]);
      m.decoder.ropeInAttention = true;
      expect(counts()).toEqual([5, 5, 5 + past, 5 + past]);
      const t = m.config.tokens;
      // A 300-token text prompt: every decode step attends over more than 256 keys.
      const ids = [t.bos, t.inst, ...Array.from({ length: 296 }, (_, i) => 20 + ((i * 37) % 900)), t.instEnd];
      const fused = await greedyDecode(m, { ids, images: [] }, 3, true);
      const plain = await greedyDecode(m, { ids, images: [] }, 3, false);
      expect(fused.ids).toEqual(plain.ids);
      expectSameLogits(gpu, fused.logits, plain.logits);
    } finally {
      f.model.destroy();
    }
  });
});

/**
 * Residual epilogue (`q4MatVec(..., { residual: true })`, the o- and down-projections of a decode
 * step): y = r + W x in one dispatch. Reference: r + (W x) in float64; tolerance the projection's
 * bound plus the rounding of the add (u |y| in f32; in f16 the product is stored as f16 first,
 * 2^-11 |W x|, then the f16 add, 2^-11 |y|). It must also be bit-identical to the unfused path
 * (matvec into scratch, then add.wgsl), which is what keeps greedy decoding unchanged.
 */
describe('q4 matvec with the residual add as its epilogue', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  async function fused(w: Q4Weight, xv: Float32Array, rv: Float32Array, dtype: Act, config?: Q4MatVecConfig) {
    const x = upload(gpu, xv, dtype, 'x');
    const y = upload(gpu, rv, dtype, 'residual');
    record(gpu, 'residual', (ctx) => q4MatVec(ctx, w, x, y, { residual: true, config }));
    const out = await readF32(y);
    x.destroy();
    y.destroy();
    return out;
  }

  async function unfused(w: Q4Weight, xv: Float32Array, rv: Float32Array, dtype: Act, config?: Q4MatVecConfig) {
    const x = upload(gpu, xv, dtype, 'x');
    const y = upload(gpu, rv, dtype, 'residual');
    const h = upload(gpu, new Float32Array(rv.length), dtype, 'h');
    record(gpu, 'unfused', (ctx) => {
      q4MatVec(ctx, w, x, h, { config });
      addInPlace(ctx, y, h);
    });
    const out = await readF32(y);
    for (const t of [x, y, h]) t.destroy();
    return out;
  }

  function refs(y: ArrayLike<number>, mag: ArrayLike<number>, rv: ArrayLike<number>, K: number, dtype: Act): GateUpRef[] {
    return Array.from({ length: y.length }, (_, i) => {
      const ref = rv[i]! + y[i]!;
      const add = dtype === 'f16' ? 2 ** -11 * (Math.abs(y[i]!) + Math.abs(ref)) : U32 * Math.abs(ref);
      return { ref, tol: C * U32 * Math.sqrt(K) * mag[i]! + add + FTZ };
    });
  }

  for (const config of configs(gpu)) {
    for (const dtype of dtypes) {
      it(`${config.name}, ${dtype}: K x N in {32,96,160} x {1,7,33,257}, equal to matvec + add`, async () => {
        let worst = 0;
        for (const K of [32, 96, 160]) {
          for (const N of [1, 7, 33, 257]) {
            const m = quantized(N, K, N * 31 + K);
            const xv = randn(K, K + 3);
            const rv = randn(N, N + 5);
            if (dtype === 'f16') for (const v of [xv, rv]) v.forEach((e, i) => (v[i] = roundF16(e)));
            const w = uploadQ4(gpu, m, 'w');
            const got = await fused(w, xv, rv, dtype, config);
            const plain = await unfused(w, xv, rv, dtype, config);
            destroyQ4(w);
            expect(Array.from(got), `N=${N} K=${K} bit-identical to matvec + add`).toEqual(Array.from(plain));
            const r = q4MatVecWithMag(m, xv);
            worst = Math.max(worst, checkTol(got, refs(r.y, r.mag, rv, K, dtype), `N=${N} K=${K}`));
          }
        }
        console.log(`q4 residual ${config.name} ${dtype}: worst err ${worst.toFixed(3)} x tol`);
      });
    }
  }

  it('adds per row part of a split weight, and the check catches a missing add', async () => {
    const [N, K] = [41, 96];
    const m = quantized(N, K, 91);
    const w = uploadQ4(gpu, m, 'split', 16 * (K / 2)); // 16 rows per part: 3 parts
    expect(w.parts.length).toBe(3);
    const xv = randn(K, 92);
    const rv = randn(N, 93);
    const got = await fused(w, xv, rv, 'f32');
    destroyQ4(w);
    const r = q4MatVecWithMag(m, xv);
    checkTol(got, refs(r.y, r.mag, rv, K, 'f32'), 'split');
    expect(() => checkTol(got, refs(r.y, r.mag, new Float32Array(N), K, 'f32'), 'no residual')).toThrow();
  });

  for (const [K, N, what] of [[4096, 5120, 'o-proj 4096 -> 5120'], [14336, 5120, 'down-proj 14336 -> 5120']] as const) {
    it(`Nemo ${what}: synthetic weights, sampled rows`, async () => {
      const w = uploadSynthQ4(gpu, N, K, 21, what);
      const xv = randn(K, 22);
      const rv = randn(N, 23);
      const got = await fused(w, xv, rv, 'f32');
      destroyQ4(w);
      const rows = [0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1];
      for (let i = 1; rows.length < 48; i++) rows.push(Math.floor((i * (N - 1)) / 41));
      const checks = rows.map((row) => {
        const d = synthRowDot(K, 21, row, xv);
        return refs([d.y], [d.mag], [rv[row]!], K, 'f32')[0]!;
      });
      const worst = checkTol(got, checks, what, (i) => rows[i]!);
      console.log(`q4 residual Nemo ${what}: worst err ${worst.toFixed(3)} x tol`);
    });
  }
});

/**
 * The RMSNorm folded into the fused matvecs (decode: the attention's input norm into q/k/v, the
 * post-attention norm into gate/up + SiLU, the final norm into lm_head): x is the residual stream. Checked against float64
 * (bound: `foldedNormRel`, `projErr`) and against rmsnorm.wgsl followed by the kernel without the
 * norm, which it must equal bit for bit (that keeps greedy decoding unchanged).
 */
describe('q4 matvec with the RMSNorm folded in (norm + q/k/v, norm + gate/up, norm + lm_head)', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();
  const eps = 1e-5;

  type Op = (ctx: Ctx, x: Tensor, y: Tensor, norm?: { weight: Tensor; eps: number }) => void;

  /**
   * Bit-equality with rmsnorm + the kernel, where the compiler keeps each product rounded
   * (SwiftShader). Others may contract the folded norm's last multiply into the next add (an
   * FMA: lavapipe does), which the unfused kernel, reading a stored value, cannot: there the
   * float64 bound alone applies.
   */
  function sameAsUnfused(fused: Float32Array, plain: Float32Array, what: string): void {
    if (gpu.adapterInfo.architecture === 'swiftshader') expect(Array.from(fused), what).toEqual(Array.from(plain));
  }

  /** The fused kernel on x with the norm folded in, and rmsnorm(x) -> h then the kernel on h. */
  async function both(op: Op, xv: Float32Array, wv: Float32Array, dtype: Act, wDtype: Act, yLen: number) {
    const x = upload(gpu, xv, dtype, 'x');
    const w = upload(gpu, wv, wDtype, 'norm.w');
    const h = Tensor.empty(gpu, [xv.length], dtype, 'h');
    const y = upload(gpu, new Float32Array(yLen).fill(1234), dtype, 'y');
    record(gpu, 'norm-fused', (ctx) => op(ctx, x, y, { weight: w, eps }));
    const fused = await readF32(y);
    const y2 = upload(gpu, new Float32Array(yLen).fill(1234), dtype, 'y2');
    record(gpu, 'norm-unfused', (ctx) => {
      rmsnorm(ctx, x, w, h, eps);
      op(ctx, h, y2);
    });
    const plain = await readF32(y2);
    for (const t of [x, w, h, y, y2]) t.destroy();
    return { fused, plain };
  }

  /** A residual-stream-like x (std 3) and norm weights around 1 (rounded as stored). */
  function inputs(K: number, seed: number, dtype: Act, wDtype: Act) {
    const xv = randn(K, seed, 3);
    const wv = randn(K, seed + 1, 0.5).map((v) => 1 + v);
    if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
    if (wDtype === 'f16') wv.forEach((v, i) => (wv[i] = roundF16(v)));
    return { xv, wv };
  }

  // Every split on SwiftShader; elsewhere (lavapipe compiles each variant with LLVM for minutes)
  // the adapter's default split, the one a model runs.
  const splits = gpu.adapterInfo.architecture === 'swiftshader' ? configs(gpu) : [{ name: 'adapter default', ...defaultQ4MatVecConfig(gpu) }];
  const cases = splits.flatMap((config, ci) =>
    dtypes.flatMap((dtype) => (ci === 0 ? (['f32', 'f16'] as const) : (['f32'] as const)).map((wDtype) => ({ config, dtype, wDtype }))),
  );
  for (const { config, dtype, wDtype } of cases) {
    // K: 1 and 5 groups (fewer elements than the 256 lanes) and 33 (lanes wrap around K); N not
    // multiples of a block nor of a workgroup's rows.
    it(`q/k/v, ${config.name}, ${dtype}, norm weight ${wDtype}: K in {32,160,1056}, rows {7,33,257}`, async () => {
      let worst = 0;
      for (const K of [32, 160, 1056]) {
        const rows = [7, 33, 257];
        const ms = rows.map((N, i) => quantized(N, K, 300 + N + K + i));
        const ws = ms.map((m, i) => uploadQ4(gpu, m, `w${i}`));
        const offsets = [0, 7, 40];
        const { xv, wv } = inputs(K, K + 11, dtype, wDtype);
        const { fused, plain } = await both((ctx, x, y, norm) => q4MatVecMulti(ctx, ws, x, y, offsets, { config, norm }), xv, wv, dtype, wDtype, 297);
        ws.forEach(destroyQ4);
        sameAsUnfused(fused, plain, `K=${K}: equal to rmsnorm + q/k/v`);
        const n = normRef(xv, wv, eps);
        const rel = foldedNormRel(K, dtype);
        ms.forEach((m, i) => {
          const { y, mag } = q4MatVecWithMag(m, n);
          const refs = Array.from({ length: y.length }, (_, r) => ({
            ref: y[r]!,
            tol: projErr(mag[r]!, K, rel) + (dtype === 'f16' ? 2 ** -11 * Math.abs(y[r]!) : 0) + FTZ,
          }));
          worst = Math.max(worst, checkTol(fused, refs, `K=${K} weight ${i}`, (r) => r + offsets[i]!));
          if (i === 0) {
            // The same projection of x normed without its weight (w = 1) is far outside the bound.
            const bare = q4MatVecWithMag(m, normRef(xv, new Float32Array(K).fill(1), eps));
            const wrong = Array.from({ length: y.length }, (_, r) => ({ ref: bare.y[r]!, tol: refs[r]!.tol }));
            expect(() => checkTol(fused, wrong, 'norm weight ignored', (r) => r + offsets[i]!)).toThrow();
          }
        });
      }
      console.log(`q4 norm+qkv ${config.name} ${dtype} w ${wDtype}: worst err ${worst.toFixed(3)} x tol`);
    });

    it(`gate/up, ${config.name}, ${dtype}, norm weight ${wDtype}: K in {32,160,1056}, N in {7,257}`, async () => {
      let worst = 0;
      for (const K of [32, 160, 1056]) {
        for (const N of [7, 257]) {
          const mg = quantized(N, K, 700 + N + K);
          const mu = quantized(N, K, 701 + N + K);
          const [gate, up] = [uploadQ4(gpu, mg, 'gate'), uploadQ4(gpu, mu, 'up')];
          const { xv, wv } = inputs(K, K + N, dtype, wDtype);
          const { fused, plain } = await both((ctx, x, y, norm) => q4MatVecGateUp(ctx, gate, up, x, y, { config, norm }), xv, wv, dtype, wDtype, N);
          destroyQ4(gate);
          destroyQ4(up);
          sameAsUnfused(fused, plain, `N=${N} K=${K}: equal to rmsnorm + gate/up`);
          const n = normRef(xv, wv, eps);
          const g = q4MatVecWithMag(mg, n);
          const u = q4MatVecWithMag(mu, n);
          const rel = foldedNormRel(K, dtype);
          const refs = Array.from({ length: N }, (_, i) => gateUpRef(g.y[i]!, g.mag[i]!, u.y[i]!, u.mag[i]!, K, dtype, rel));
          worst = Math.max(worst, checkTol(fused, refs, `N=${N} K=${K}`));
        }
      }
      console.log(`q4 norm+gate/up ${config.name} ${dtype} w ${wDtype}: worst err ${worst.toFixed(3)} x tol`);
    });
  }

  // The final norm folded into lm_head (plain variant), per row part of a split weight.
  for (const { config, dtype, wDtype } of cases) {
    it(`plain (lm_head), ${config.name}, ${dtype}, norm weight ${wDtype}: K in {32,160,1056}, N = 41 in 3 row parts`, async () => {
      let worst = 0;
      for (const K of [32, 160, 1056]) {
        const N = 41;
        const m = quantized(N, K, 800 + K);
        const w = uploadQ4(gpu, m, 'lm_head', 16 * (K / 2)); // 16 rows per part: 3 parts
        const { xv, wv } = inputs(K, K + 3, dtype, wDtype);
        const { fused, plain } = await both((ctx, x, y, norm) => q4MatVec(ctx, w, x, y, { config, norm }), xv, wv, dtype, wDtype, N);
        destroyQ4(w);
        sameAsUnfused(fused, plain, `K=${K}: equal to rmsnorm + matvec`);
        const { y, mag } = q4MatVecWithMag(m, normRef(xv, wv, eps));
        const rel = foldedNormRel(K, dtype);
        const refs = Array.from({ length: N }, (_, r) => ({
          ref: y[r]!,
          tol: projErr(mag[r]!, K, rel) + (dtype === 'f16' ? 2 ** -11 * Math.abs(y[r]!) : 0) + FTZ,
        }));
        worst = Math.max(worst, checkTol(fused, refs, `K=${K}`));
      }
      console.log(`q4 norm+matvec ${config.name} ${dtype} w ${wDtype}: worst err ${worst.toFixed(3)} x tol`);
    });
  }

  it('an adapter binding at most 8 storage buffers per stage: norm + q/k/v as one dispatch per weight, the same bits', async () => {
    // The same device seen through WebGPU's default limit (the fused kernel binds 9 with a norm).
    const limits: Record<string, number> = {};
    for (const k in gpu.limits) limits[k] = (gpu.limits as unknown as Record<string, number>)[k]!;
    const low: Gpu = Object.create(gpu, { limits: { value: { ...limits, maxStorageBuffersPerShaderStage: 8 } } });
    const K = 160;
    const ws = [7, 33, 20].map((N, i) => uploadQ4(gpu, quantized(N, K, 40 + i), `w${i}`));
    const { xv, wv } = inputs(K, 3, 'f32', 'f32');
    const x = upload(gpu, xv, 'f32', 'x');
    const w = upload(gpu, wv, 'f32', 'norm.w');
    const run = async (g: Gpu) => {
      const y = upload(gpu, new Float32Array(64).fill(1234), 'f32', 'y');
      const before = gpu.ledger.dispatches;
      record(g, 'qkv', (ctx) => q4MatVecMulti(ctx, ws, x, y, [0, 7, 40], { norm: { weight: w, eps } }));
      const n = gpu.ledger.dispatches - before;
      const out = await readF32(y);
      y.destroy();
      return { n, out };
    };
    const fused = await run(gpu);
    const split = await run(low);
    expect([fused.n, split.n]).toEqual([1, 3]);
    expect(Array.from(split.out)).toEqual(Array.from(fused.out));
    ws.forEach(destroyQ4);
    for (const t of [x, w]) t.destroy();
  });

  it('rejects a norm weight of the wrong length, x aliasing y, and a norm with the residual epilogue', async () => {
    const K = 96;
    const w = uploadQ4(gpu, quantized(8, K, 5), 'w');
    const x = Tensor.empty(gpu, [K], 'f32', 'x');
    const y = Tensor.empty(gpu, [K], 'f32', 'y');
    const short = Tensor.empty(gpu, [K - 32], 'f32', 'short');
    const ok = Tensor.empty(gpu, [K], 'f32', 'ok');
    expect(() => record(gpu, 'len', (ctx) => q4MatVecMulti(ctx, [w], x, y, [0], { norm: { weight: short, eps } }))).toThrow(/short.*must be \[96\]/);
    expect(() => record(gpu, 'alias', (ctx) => q4MatVecGateUp(ctx, w, w, x, x, { norm: { weight: ok, eps } }))).toThrow(/different buffers/);
    expect(() => record(gpu, 'both', (ctx) => q4MatVec(ctx, w, x, y, { residual: true, norm: { weight: ok, eps } }))).toThrow(/do not combine/);
    gpu.check();
    destroyQ4(w);
    for (const t of [x, y, short, ok]) t.destroy();
  });

  /** Sampled rows of the synthetic weight `seed` [N, K] on the float64 normed input n. */
  function sampleRows(N: number, count: number): number[] {
    const rows = [0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1];
    for (let i = 1; rows.length < count; i++) rows.push(Math.floor((i * (N - 1)) / (count - 7)));
    return rows;
  }

  it.runIf(realShapes)('Nemo norm + q/k/v 5120 -> 4096 + 1024 + 1024: synthetic weights, sampled rows', async () => {
    const K = 5120;
    const rows = [4096, 1024, 1024];
    const seeds = [31, 32, 33];
    const offsets = [0, 4096, 5120];
    const ws = rows.map((N, i) => uploadSynthQ4(gpu, N, K, seeds[i]!, `nemo${i}`));
    const { xv, wv } = inputs(K, 34, 'f32', 'f32');
    const { fused, plain } = await both((ctx, x, y, norm) => q4MatVecMulti(ctx, ws, x, y, offsets, { norm }), xv, wv, 'f32', 'f32', 6144);
    ws.forEach(destroyQ4);
    sameAsUnfused(fused, plain, 'equal to rmsnorm + q/k/v');
    const n = normRef(xv, wv, eps);
    const rel = foldedNormRel(K, 'f32');
    let worst = 0;
    rows.forEach((N, i) => {
      const sample = sampleRows(N, 32);
      const refs = sample.map((r) => {
        const d = synthRowDot(K, seeds[i]!, r, n);
        return { ref: d.y, tol: projErr(d.mag, K, rel) + FTZ };
      });
      worst = Math.max(worst, checkTol(fused, refs, `weight ${i}`, (j) => offsets[i]! + sample[j]!));
    });
    console.log(`q4 norm+qkv Nemo: worst err ${worst.toFixed(3)} x tol`);
  });

  it.runIf(realShapes)('Nemo final norm + lm_head 5120 -> 131072: synthetic weights, sampled rows', async () => {
    const [K, N] = [5120, 131072];
    const w = uploadSynthQ4(gpu, N, K, 51, 'lm_head');
    const { xv, wv } = inputs(K, 52, 'f32', 'f32');
    const { fused, plain } = await both((ctx, x, y, norm) => q4MatVec(ctx, w, x, y, { norm }), xv, wv, 'f32', 'f32', N);
    destroyQ4(w);
    sameAsUnfused(fused, plain, 'equal to rmsnorm + matvec');
    const n = normRef(xv, wv, eps);
    const rel = foldedNormRel(K, 'f32');
    const sample = sampleRows(N, 48);
    const refs = sample.map((r) => {
      const d = synthRowDot(K, 51, r, n);
      return { ref: d.y, tol: projErr(d.mag, K, rel) + FTZ };
    });
    const worst = checkTol(fused, refs, '5120->131072', (i) => sample[i]!);
    console.log(`q4 norm+lm_head Nemo: worst err ${worst.toFixed(3)} x tol`);
  });

  it.runIf(realShapes)('Nemo norm + gate/up 5120 -> 2 x 14336: synthetic weights, sampled rows', async () => {
    const [K, N] = [5120, 14336];
    const gate = uploadSynthQ4(gpu, N, K, 41, 'gate');
    const up = uploadSynthQ4(gpu, N, K, 42, 'up');
    const { xv, wv } = inputs(K, 43, 'f32', 'f32');
    const { fused, plain } = await both((ctx, x, y, norm) => q4MatVecGateUp(ctx, gate, up, x, y, { norm }), xv, wv, 'f32', 'f32', N);
    destroyQ4(gate);
    destroyQ4(up);
    sameAsUnfused(fused, plain, 'equal to rmsnorm + gate/up');
    const n = normRef(xv, wv, eps);
    const rel = foldedNormRel(K, 'f32');
    const sample = sampleRows(N, 48);
    const refs = sample.map((r) => {
      const g = synthRowDot(K, 41, r, n);
      const u = synthRowDot(K, 42, r, n);
      return gateUpRef(g.y, g.mag, u.y, u.mag, K, 'f32', rel);
    });
    const worst = checkTol(fused, refs, '5120->2x14336', (i) => sample[i]!);
    console.log(`q4 norm+gate/up Nemo: worst err ${worst.toFixed(3)} x tol`);
  });
});
