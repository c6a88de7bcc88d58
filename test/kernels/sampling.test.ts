import { describe, expect, it } from 'vitest';
import { Sampler, TOPK_MAX, seededUniforms, type PenaltyIds, type SampleResult, type SamplingOptions } from '../../src/kernels/sampling.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { KernelError } from '../../src/errors.js';
import { getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { argmaxRef, distributionRef, drawRef, penalize, type RefDistribution } from './ref/sampling.js';

const SIZES = [1, 7, 1000, 2049, 131072]; // 131072: the real vocabulary
const BASE: SamplingOptions = { temperature: 1, topK: TOPK_MAX, topP: 1, repetitionPenalty: 1, u: 0.5 };

type Mode = 'argmax' | 'topk';

/** Uploads f32 logits [rows, V], runs one selection, returns the 16-byte result. */
async function select(
  values: Float32Array,
  V: number,
  mode: Mode,
  opts: Partial<SamplingOptions> = {},
  penalty?: Uint32Array,
  row?: number,
): Promise<SampleResult> {
  const gpu = await getGpu();
  const logits = Tensor.from(gpu, values, [values.length / V, V], 'f32', 'logits');
  const ids = penalty ? Tensor.from(gpu, penalty.length ? penalty : new Uint32Array(1), [Math.max(1, penalty.length)], 'u32', 'ids') : undefined;
  const pen: PenaltyIds | undefined = ids ? { ids, count: penalty!.length } : undefined;
  const sampler = new Sampler(gpu, V);
  const o = { ...BASE, ...opts };
  record(gpu, 'sample', (ctx) =>
    mode === 'argmax'
      ? sampler.recordArgmax(ctx, logits, { repetitionPenalty: o.repetitionPenalty, penaltyIds: pen, row })
      : sampler.recordTopK(ctx, logits, o, pen, row),
  );
  const r = await sampler.read();
  sampler.destroy();
  logits.destroy();
  ids?.destroy();
  return r;
}

/** Runs the top-k path once per u (one Sampler, one upload) and returns the tokens. */
async function sweep(values: Float32Array, V: number, opts: Omit<SamplingOptions, 'u'>, us: number[], penalty?: Uint32Array) {
  const gpu = await getGpu();
  const logits = Tensor.from(gpu, values, [V], 'f32', 'logits');
  const ids = penalty ? Tensor.from(gpu, penalty, [penalty.length], 'u32', 'ids') : undefined;
  const sampler = new Sampler(gpu, V);
  const out: SampleResult[] = [];
  for (const u of us) {
    record(gpu, 'sample', (ctx) => sampler.recordTopK(ctx, logits, { ...opts, u }, ids && { ids, count: penalty!.length }));
    out.push(await sampler.read());
  }
  sampler.destroy();
  logits.destroy();
  ids?.destroy();
  return out;
}

/** u grid that keeps `margin` away from every boundary of the reference distribution. */
function safeGrid(d: RefDistribution, n: number, margin = 1e-4): number[] {
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = (i + 0.5) / n;
    if (d.cum.every((c) => Math.abs(c - u) > margin)) us.push(u);
  }
  return us;
}

/** Random logits with a unique maximum planted at `at`, `gap` above the rest. */
function planted(V: number, seed: number, at: number, gap = 1): Float32Array {
  const v = randn(V, seed, 2);
  let m = -Infinity;
  for (const x of v) m = Math.max(m, x);
  v[at] = m + gap;
  return v;
}

describe('argmax', () => {
  it.each(SIZES)('V=%i: matches the reference, lowest index wins ties', async (V) => {
    const v = randn(V, V, 3);
    if (V >= 7) {
      // Two equal maxima, the later one in a different workgroup chunk when V is large.
      const hi = v.reduce((a, b) => Math.max(a, b), -Infinity) + 1;
      v[V - 2] = hi;
      v[Math.floor(V / 3)] = hi;
    }
    const want = argmaxRef(v);
    if (V >= 7) expect(want).toBe(Math.floor(V / 3));
    const got = await select(v, V, 'argmax');
    expect(got.token).toBe(want);
    expect(got.logit).toBe(v[want]);
    expect(got.prob).toBe(1);
  });

  it('all-equal logits and all -inf give index 0; -inf and NaN never beat a finite value', async () => {
    expect((await select(new Float32Array(2049).fill(0.25), 2049, 'argmax')).token).toBe(0);
    expect((await select(new Float32Array(1000).fill(-Infinity), 1000, 'argmax')).token).toBe(0);
    const v = new Float32Array(5000).fill(-Infinity);
    v[10] = NaN;
    v[4321] = -3e38; // very negative but finite
    v[4999] = NaN;
    expect((await select(v, 5000, 'argmax')).token).toBe(4321);
    // -0 and +0 tie: the lower index wins.
    expect((await select(Float32Array.from([-1, -0, 0, -2]), 4, 'argmax')).token).toBe(1);
    expect((await select(Float32Array.from([-1, 0, -0, -2]), 4, 'argmax')).token).toBe(1);
  });

  it('selects the requested row of [rows, V] logits', async () => {
    const V = 1000;
    const v = new Float32Array(3 * V);
    v.set(planted(V, 1, 17), 0);
    v.set(planted(V, 2, 500), V);
    v.set(planted(V, 3, 999), 2 * V);
    expect((await select(v, V, 'argmax', {}, undefined, 1)).token).toBe(500);
    expect((await select(v, V, 'argmax')).token).toBe(999); // default: last row
    expect((await select(v, V, 'topk', { topK: 1 }, undefined, 0)).token).toBe(17);
  });
});

describe('top-k / top-p sampling', () => {
  it.each(SIZES)('V=%i: top-k=1, temperature->0 and tiny top-p all equal argmax', async (V) => {
    const at = Math.floor((V * 2) / 3);
    const v = planted(V, 7 + V, at);
    expect(argmaxRef(v)).toBe(at);
    for (const u of [0, 0.37, 0.999]) {
      expect((await select(v, V, 'topk', { topK: 1, u })).token).toBe(at);
    }
    // exp(-gap / T) = exp(-1e4) = 0 in f32: only the maximum has weight.
    expect((await select(v, V, 'topk', { temperature: 1e-4, u: 0.999 })).token).toBe(at);
    const tinyP = await select(v, V, 'topk', { topP: 1e-6, u: 0.999 });
    expect(tinyP.token).toBe(at);
    expect(tinyP.kept).toBe(1);
    expect(tinyP.prob).toBe(1);
  });

  it.each([
    [1000, 20, 0.8, 0.9],
    [2049, 64, 1.0, 1],
    [7, 5, 1.3, 0.75],
    [131072, 64, 0.7, 0.95],
  ])('V=%i k=%i T=%f p=%f: a u sweep reproduces the reference draw exactly', async (V, topK, temperature, topP) => {
    const v = randn(V, 100 + V, 1.5);
    const opts = { temperature, topK, topP, repetitionPenalty: 1 };
    const d = distributionRef(v, opts);
    // top-p compares f32 prefix masses with topP: keep the fixture away from that boundary too.
    expect(d.prefix.every((m) => Math.abs(m - topP) > 1e-4)).toBe(true);
    const us = safeGrid(d, V >= 131072 ? 16 : 64);
    expect(us.length).toBeGreaterThan(V >= 131072 ? 12 : 40);
    const got = await sweep(v, V, opts, us);
    const tokens = new Set<number>();
    got.forEach((g, i) => {
      const want = drawRef(d, us[i]!);
      expect(g.token, `u=${us[i]}`).toBe(want.token);
      expect(g.kept).toBe(want.kept);
      // f32 exp and sums vs float64: relative error of a few ulp times k terms.
      expect(Math.abs(g.prob - want.prob)).toBeLessThanOrEqual(1e-5 * want.prob + 1e-7);
      expect(g.logit).toBe(v[g.token]);
      tokens.add(g.token);
    });
    // The sweep must actually exercise several candidates (not a degenerate distribution).
    expect(tokens.size).toBeGreaterThan(Math.min(3, d.kept - 1));
  });

  it('ties and all-equal logits: equal mass, candidates in index order', async () => {
    const V = 1000;
    const flat = new Float32Array(V).fill(-0.5);
    const opts = { temperature: 0.9, topK: 10, topP: 1, repetitionPenalty: 1 };
    const d = distributionRef(flat, opts);
    expect(d.order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const us = safeGrid(d, 40);
    const got = await sweep(flat, V, opts, us);
    got.forEach((g, i) => {
      expect(g.token).toBe(Math.floor(us[i]! * 10));
      expect(g.prob).toBeCloseTo(0.1, 6);
    });
    // Ties spread over workgroups: equal values at 5, 700 and 2500 rank 5 < 700 < 2500.
    const V2 = 4099;
    const v = randn(V2, 9, 0.1);
    for (const i of [2500, 5, 700]) v[i] = 3;
    const d2 = distributionRef(v, { ...opts, topK: 3 });
    expect(d2.order).toEqual([5, 700, 2500]);
    const g2 = await sweep(v, V2, { ...opts, topK: 3 }, [0.1, 0.5, 0.9]);
    expect(g2.map((g) => g.token)).toEqual([5, 700, 2500]);
  });

  it('-inf and NaN logits get zero mass; all -inf draws uniformly over the top k ties', async () => {
    const v = Float32Array.from([-Infinity, 2, NaN, -Infinity, 1, -1e30, -Infinity]);
    const opts = { temperature: 1, topK: 7, topP: 1, repetitionPenalty: 1 };
    const d = distributionRef(v, opts);
    const us = safeGrid(d, 50);
    const got = await sweep(v, 7, opts, us);
    got.forEach((g, i) => {
      expect([1, 4, 5]).toContain(g.token);
      expect(g.token).toBe(drawRef(d, us[i]!).token);
    });
    const allInf = new Float32Array(7).fill(-Infinity);
    const g = await sweep(allInf, 7, { ...opts, topK: 4 }, [0.1, 0.3, 0.6, 0.9]);
    expect(g.map((x) => x.token)).toEqual([0, 1, 2, 3]);
  });

  it('repetition penalty: Hugging Face semantics, each distinct id once, ids >= V ignored', async () => {
    const V = 2049;
    const v = new Float32Array(V).fill(-5);
    v[100] = 5; // penalised: 5 / 1.5 = 3.33 (twice would be 2.22)
    v[1500] = 3; // wins only if 100 is penalised twice
    v[2000] = 3.5; // wins only if 100 is penalised once? no: 3.5 > 3.33, so it wins after the penalty
    const ids = Uint32Array.from([100, 7, 100, 99999, 2048]);
    expect(argmaxRef(penalize(v, ids, 1.5))).toBe(2000);
    expect((await select(v, V, 'argmax', {}, ids)).token).toBe(100); // penalty off
    const a = await select(v, V, 'argmax', { repetitionPenalty: 1.5 }, ids);
    expect(a.token).toBe(2000);
    v[2000] = 3.2; // now 5 / 1.5 = 3.33 > 3.2 > 3: penalised once, 100 still wins
    const b = await select(v, V, 'argmax', { repetitionPenalty: 1.5 }, ids);
    expect(b.token).toBe(100);
    expect(b.logit).toBeCloseTo(5 / 1.5, 5); // f32 division
    const t = await select(v, V, 'topk', { repetitionPenalty: 1.5, topK: 1 }, ids);
    expect(t.token).toBe(100);

    // Negative logits are multiplied: -1 * 1.5 = -1.5 > -1.6, twice would be -2.25 < -1.6.
    const n = new Float32Array(V).fill(-9);
    n[3] = -1;
    n[4] = -1.6;
    n[5] = -1.55;
    const nid = Uint32Array.from([3, 3, 5]); // 5 -> -2.325
    expect((await select(n, V, 'argmax', { repetitionPenalty: 1.5 }, nid)).token).toBe(3);
    expect((await select(n, V, 'argmax', { repetitionPenalty: 1.7 }, nid)).token).toBe(4); // -1.7 < -1.6
    // A penalty < 1 boosts: 4 -> -1.6 * 0.5 = -0.8 beats 3 (-1).
    expect((await select(n, V, 'argmax', { repetitionPenalty: 0.5 }, Uint32Array.from([4]))).token).toBe(4);
    // Penalty on with no ids: the mask is cleared, nothing changes.
    expect((await select(n, V, 'argmax', { repetitionPenalty: 1.5 }, new Uint32Array(0))).token).toBe(3);

    // Sampling distribution with the penalty matches the reference.
    const r = randn(V, 77, 1.5);
    const rid = Uint32Array.from(argmaxRef(r) ? [argmaxRef(r), 3, 3, 1000] : [0, 3]);
    const opts = { temperature: 0.8, topK: 16, topP: 0.9, repetitionPenalty: 1.3 };
    const d = distributionRef(r, opts, rid);
    expect(d.prefix.every((m) => Math.abs(m - opts.topP) > 1e-4)).toBe(true);
    const us = safeGrid(d, 32);
    const got = await sweep(r, V, opts, us, rid);
    got.forEach((g, i) => expect(g.token, `u=${us[i]}`).toBe(drawRef(d, us[i]!).token));
  });

  it('seeded uniforms reproduce a generation', async () => {
    const V = 1000;
    const v = randn(V, 5, 1);
    const opts = { temperature: 1, topK: 40, topP: 0.95, repetitionPenalty: 1 };
    const run = async (seed: number) => {
      const next = seededUniforms(seed);
      return (await sweep(v, V, opts, [next(), next(), next(), next(), next(), next()])).map((g) => g.token);
    };
    const a = await run(42);
    expect(await run(42)).toEqual(a);
    const s1 = seededUniforms(1);
    const s2 = seededUniforms(2);
    expect([s1(), s1()]).not.toEqual([s2(), s2()]);
  });

  it('rejects out-of-range options', async () => {
    const gpu = await getGpu();
    const logits = Tensor.empty(gpu, [7], 'f32', 'logits');
    const sampler = new Sampler(gpu, 7);
    record(gpu, 'bad', (ctx) => {
      for (const bad of [{ topK: 0 }, { topK: TOPK_MAX + 1 }, { topP: 0 }, { topP: 1.5 }, { u: 1 }, { u: -0.1 }, { temperature: -1 }, { repetitionPenalty: 0 }]) {
        expect(() => sampler.recordTopK(ctx, logits, { ...BASE, ...bad }), JSON.stringify(bad)).toThrow(KernelError);
      }
      expect(() => sampler.recordTopK(ctx, logits, { ...BASE, temperature: 0 })).toThrow(/greedy/);
      const wrong = Tensor.empty(gpu, [8], 'f32', 'wrong');
      expect(() => sampler.recordArgmax(ctx, wrong)).toThrow(/V=7/);
      wrong.destroy();
    });
    await gpu.sync();
    sampler.destroy();
    logits.destroy();
  });
});
