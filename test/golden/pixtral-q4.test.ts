/**
 * pixtral-tiny-a converted with `--dtype q4` (decoder linears, embedding and lm_head in q4g32;
 * vision and projector f16) against the f32 goldens. Random weights leave many near-ties, so
 * the fixture README measures what correct 4-bit quantisation gives here: top-1 agreement with
 * the float model of 60% (symmetric groups of 32) to 76% (with a per-group minimum) of the
 * prompt positions, while a broken 4-bit path lands near 0%. Thresholds below sit under our
 * measured values (printed) with margin, and far above what a broken path gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import { loadFixtureModel, type LoadedFixture } from './load.js';
import { argmax, casePrompt, loadCase } from './cases.js';

let f: LoadedFixture;

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

  it('agrees on top-1 at most prompt positions, with bounded logit error', async () => {
    let agree = 0;
    let total = 0;
    let sumSq = 0;
    let sumSqRef = 0;
    for (const name of ['text_only', 'one_image_wide', 'two_images']) {
      const c = await loadCase('pixtral-tiny-a', name);
      const r = await f.model.prefill(casePrompt(c, f.model.config.tokens.img, f.model.config.vision.patchSize), { returnLogits: true });
      const V = f.model.config.text.vocabSize;
      const want = c.expected.logits!.data as Float32Array;
      const got = r.logits!;
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
      console.log(`[golden q4] ${name}: top-1 agreement ${caseAgree}/${c.json.seq_len}`);
      agree += caseAgree;
      total += c.json.seq_len;
    }
    const relRms = Math.sqrt(sumSq / sumSqRef);
    console.log(`[golden q4] top-1 agreement ${agree}/${total} = ${((100 * agree) / total).toFixed(1)}%, relative RMS logit error ${relRms.toFixed(3)}`);
    expect(agree / total).toBeGreaterThan(0.45);
    expect(relRms).toBeLessThan(0.35);
  });
});
