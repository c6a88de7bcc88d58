/**
 * mistral3-tiny-a (Pixtral-ViT patch 14 + RMSNorm/2x2 patch merger projector + ministral3
 * decoder with YaRN and the Llama-4 query scale; converted by the project's converter, f32)
 * against the float64 reference's goldens: patch embeddings, vision output, projector output
 * (after norm + merge + MLP), logits of every prompt position, last logits and 8 greedy tokens
 * with their logits, for text_only, one_image_wide, two_images and odd_grid_direct (5x7 patches
 * -> 2x3 merged tokens; the dropped row/column still attends in the vision tower).
 *
 * Tolerances: each case.json's STRICT atol/rtol (~20x the error of a float32 PyTorch run of the
 * same math), which this f32 implementation meets; the max errors are logged. Prefill runs in
 * chunks of 16 so chunk boundaries coincide with the Llama-4 scale steps (orig = 16): positions
 * 16 and 32 start both a new chunk and a new query scale, and greedy decoding continues to 47.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import type { PrefillInput } from '../../src/model/vlm.js';
import { loadFixtureModel, type LoadedFixture } from './load.js';
import { loadCase } from './cases.js';
import { checkMistral3Case, mistral3Prompt, MISTRAL3_CASES, MISTRAL3_FIXTURE } from './mistral3-cases.js';

let f: LoadedFixture;

beforeAll(async () => {
  f = await loadFixtureModel(await getGpu(), `${MISTRAL3_FIXTURE}-f32`, { maxContext: 128, maxChunk: 16 });
});

afterAll(() => f?.dispose());

describe('mistral3-tiny-a f32 goldens', () => {
  it('loads as mistral3 with the merger projector and YaRN', () => {
    const c = f.model.config;
    expect(c.modelType).toBe('mistral3');
    expect(c.projector.spatialMergeSize).toBe(2);
    expect(c.text.rope.type).toBe('yarn');
    expect(f.model.tokenPixels).toBe(28);
  });

  for (const name of MISTRAL3_CASES) {
    it(`${name}: vision stages, every logit, greedy tokens`, async () => {
      await checkMistral3Case(f.gpu, f.model, await loadCase(MISTRAL3_FIXTURE, name), 'mistral3 f32');
    });
  }

  it('refuses a prompt whose token grid is the patch grid instead of the merged grid', async () => {
    const c = await loadCase(MISTRAL3_FIXTURE, 'odd_grid_direct');
    const m = f.model;
    const good = mistral3Prompt(c, m.config.tokens.img, 14, 2);
    // A well-formed token layout for the 5x7 PATCH grid (as a Pixtral-style prompt would build).
    const t = m.config.tokens;
    const ids = [t.bos, t.inst];
    for (let r = 0; r < 5; r++) ids.push(...Array<number>(7).fill(t.img), r === 4 ? t.imgEnd : t.imgBreak);
    ids.push(t.instEnd);
    const bad: PrefillInput = { ids, images: [{ ...good.images[0]!, start: 2, rows: 5, cols: 7 }] };
    await expect(m.prefill(bad)).rejects.toThrow(/token grid 5x7/);
  });
});
