/**
 * pixtral-tiny-a converted with `--dtype q4` (decoder linears, embedding and lm_head in q4g32;
 * vision and projector f16) against the f32 goldens. Random weights leave many near-ties, so
 * the fixture README measures what correct 4-bit quantisation gives here: top-1 agreement with
 * the float model of 60% (symmetric groups of 32) to 76% (with a per-group minimum) of the
 * prompt positions, while a broken 4-bit path lands near 0%. Thresholds below sit under our
 * measured values (printed) with margin, and far above what a broken path gives.
 * Where the adapter has subgroup matrices (lavapipe from Mesa 26: `.ci/subgroup-matrix`), the
 * same prompts run again with the prefill products on them (`checkSubgroupMatrix` makes
 * them the default): operands rounded to f16, so the logits move by f16 rounding, not more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import { loadFixtureModel, type LoadedFixture } from './load.js';
import { argmax, casePrompt, loadCase } from './cases.js';
import { checkSubgroupMatrix } from '../../src/kernels/subgroup-matrix-check.js';
import { defaultQ4MatMulVariant } from '../../src/kernels/q4.js';
import { Sampler } from '../../src/kernels/sampling.js';
import { compileModelPipelines } from '../../src/model/pipelines.js';
import { markSubgroupMatrix, subgroupMatrixShape, subgroupMatrixVerdict } from '../../src/kernels/subgroup-matrix.js';
import { Gpu } from '../../src/gpu/device.js';

let f: LoadedFixture;
const hasSubgroupMatrix = (await getGpu()).features.subgroupMatrix;
/**
 * The subgroup-matrix prefill (vision encoder and decoder) against the tiled one: f16 operands
 * move the logits by about the f16 rounding, 2^-11 = 4.9e-4 relative (measured on lavapipe 26:
 * 6.4e-4 RMS, the same top-1 at 86/87 positions: one near-tie); the bounds leave 6x and a few
 * near-ties of room, while a wrong fragment or tile moves them by tens of percent.
 */
const REL_VS_TILED = 4e-3;
const SAME_TOP1_VS_TILED = 0.95;

beforeAll(async () => {
  f = await loadFixtureModel(await getGpu(), 'pixtral-tiny-a-q4', { maxContext: 128, maxChunk: 32 });
});

afterAll(() => f?.dispose());

describe('pixtral-tiny-a q4 vs the float goldens', () => {
  it('stores the decoder in q4 and the vision encoder in f16', () => {
    const dtypes = new Map(f.manifest.tensors.map((t) => [t.name, t.dtype]));
    expect(dtypes.get('language_model.model.layers.0.self_attn.q_proj.weight')).toBe('q4');
    expect(dtypes.get('language_model.model.embed_tokens.weight')).toBe('q4');
    expect(dtypes.get('language_model.lm_head.weight')).toBe('q4');
    expect(dtypes.get('vision_tower.transformer.layers.0.attention.q_proj.weight')).toBe('f16');
  });

  /** Prompt logits of the three cases against the goldens: top-1 agreement and relative RMS error. */
  async function measure(tag: string) {
    let agree = 0;
    let total = 0;
    let sumSq = 0;
    let sumSqRef = 0;
    const logits: Float32Array[] = [];
    for (const name of ['text_only', 'one_image_wide', 'two_images']) {
      const c = await loadCase('pixtral-tiny-a', name);
      const r = await f.model.prefill(casePrompt(c, f.model.config.tokens.img, f.model.config.vision.patchSize), { returnLogits: true });
      const V = f.model.config.text.vocabSize;
      const want = c.expected.logits!.data as Float32Array;
      const got = r.logits!;
      logits.push(got.slice(0, c.json.seq_len * V));
      let caseAgree = 0;
      for (let t = 0; t < c.json.seq_len; t++) {
        const a = got.subarray(t * V, (t + 1) * V);
        const b = want.subarray(t * V, (t + 1) * V);
        if (argmax(a) === argmax(b)) caseAgree++;
        for (let i = 0; i < V; i++) {
          sumSq += (a[i]! - b[i]!) ** 2;
          sumSqRef += b[i]! ** 2;
        }
      }
      console.log(`[golden q4${tag}] ${name}: top-1 agreement ${caseAgree}/${c.json.seq_len}`);
      agree += caseAgree;
      total += c.json.seq_len;
    }
    const relRms = Math.sqrt(sumSq / sumSqRef);
    console.log(`[golden q4${tag}] top-1 agreement ${agree}/${total} = ${((100 * agree) / total).toFixed(1)}%, relative RMS logit error ${relRms.toFixed(3)}`);
    return { agree, total, relRms, logits };
  }

  let tiled: Awaited<ReturnType<typeof measure>> | undefined;

  it('agrees on top-1 at most prompt positions, with bounded logit error', async () => {
    expect(defaultQ4MatMulVariant(f.gpu)).not.toBe('subgroupMatrix');
    tiled = await measure('');
    expect(tiled.agree / tiled.total).toBeGreaterThan(0.45);
    expect(tiled.relRms).toBeLessThan(0.35);
  });

  it.runIf(hasSubgroupMatrix)('a subgroup-matrix kernel that fails to compile at load gives the tiled kernels back, with the reason', async () => {
    // Its own device, told that a fragment shape the adapter does not list passed (16 x 16 on
    // lavapipe's 8 x 8): the plan's compile of those pipelines fails, as an unforeseen format or
    // driver would, and the load must still succeed on the tiled kernels.
    const gpu = await Gpu.create();
    const other = await loadFixtureModel(gpu, 'pixtral-tiny-a-q4', { maxContext: 128, maxChunk: 32 });
    const sampler = new Sampler(gpu, other.model.config.text.vocabSize);
    try {
      const real = subgroupMatrixShape(gpu)!;
      markSubgroupMatrix(gpu, { shape: { ...real, frag: real.frag === 8 ? 16 : 8 }, isDefault: true });
      expect(defaultQ4MatMulVariant(gpu)).toBe('subgroupMatrix');
      await compileModelPipelines(gpu, other.model, sampler);
      expect(defaultQ4MatMulVariant(gpu)).toBe('tile64');
      expect(subgroupMatrixVerdict(gpu)!.reason).toMatch(/subgroup_matrix failed to compile/);
      console.log(`[golden q4] after a failed compile: ${subgroupMatrixVerdict(gpu)!.reason!.split('\n')[0]}`);
      const c = await loadCase('pixtral-tiny-a', 'text_only');
      const r = await other.model.prefill(casePrompt(c, other.model.config.tokens.img, other.model.config.vision.patchSize), { returnLogits: true });
      expect(r.logits!.every(Number.isFinite)).toBe(true);
    } finally {
      sampler.destroy();
      await other.dispose();
      gpu.destroy();
    }
  });

  it.runIf(hasSubgroupMatrix)('the same with the prefill on subgroup matrices (compiled at load): as close to the goldens, within f16 rounding of the tiled run', async () => {
    // The load phase runs the device check, then plans the pipelines: the prefill must build none.
    // onCpu: the default on lavapipe too, where CPU adapters otherwise keep tile64.
    expect((await checkSubgroupMatrix(f.gpu, { onCpu: true })).reason).toBeUndefined();
    const sampler = new Sampler(f.gpu, f.model.config.text.vocabSize);
    await compileModelPipelines(f.gpu, f.model, sampler);
    sampler.destroy();
    const built = f.gpu.pipelines.size;
    const verdict = await checkSubgroupMatrix(f.gpu);
    expect(verdict.reason).toBeUndefined();
    expect(defaultQ4MatMulVariant(f.gpu)).toBe('subgroupMatrix');
    const m = await measure(' subgroupMatrix');
    expect(f.gpu.pipelines.size, 'pipelines built after load, inside the prefill').toBe(built);
    expect(m.agree / m.total).toBeGreaterThan(0.45);
    expect(m.relRms).toBeLessThan(0.35);
    // Against the tiled run's logits: relative RMS difference and top-1 agreement.
    let d = 0;
    let r = 0;
    let same = 0;
    let positions = 0;
    const V = f.model.config.text.vocabSize;
    m.logits.forEach((a, i) => {
      const b = tiled!.logits[i]!;
      for (let j = 0; j < a.length; j++) {
        d += (a[j]! - b[j]!) ** 2;
        r += b[j]! ** 2;
      }
      for (let t = 0; t < a.length / V; t++) {
        positions++;
        if (argmax(a.subarray(t * V, (t + 1) * V)) === argmax(b.subarray(t * V, (t + 1) * V))) same++;
      }
    });
    const rel = Math.sqrt(d / r);
    console.log(`[golden q4 subgroupMatrix] vs the tiled prefill: relative RMS ${rel.toExponential(2)}, top-1 the same at ${same}/${positions}`);
    expect(rel).toBeLessThan(REL_VS_TILED);
    expect(same / positions).toBeGreaterThan(SAME_TOP1_VS_TILED);
  });
});
