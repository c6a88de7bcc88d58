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
import { expectClose } from '../helpers/close.js';
import { readBuffer } from '../../src/gpu/tensor.js';
import { record } from '../../src/gpu/kernel.js';
import type { PrefillInput } from '../../src/model/vlm.js';
import { loadFixtureModel, type LoadedFixture } from './load.js';
import { loadCase, tol, type GoldenCase, checkDecoder } from './cases.js';

const FIXTURE = 'mistral3-tiny-a';
const CASES = ['text_only', 'one_image_wide', 'two_images', 'odd_grid_direct'];
let f: LoadedFixture;

beforeAll(async () => {
  f = await loadFixtureModel(await getGpu(), `${FIXTURE}-f32`, { maxContext: 128, maxChunk: 16 });
});

afterAll(() => f?.dispose());

/**
 * The prompt of a mistral3 case: the token grid is the MERGED grid, rows = floor(H / patch /
 * merge), cols = floor(W / patch / merge) (pixels need only be multiples of the patch, as in
 * odd_grid_direct); checked against case.json's merged grid and the [IMG] run in the ids.
 */
function mistral3Prompt(c: GoldenCase, imgTokenId: number, patch: number, merge: number): PrefillInput {
  const ids = c.json.input_ids;
  const images: PrefillInput['images'] = [];
  let from = 0;
  const meta = (c.json.images ?? []) as unknown as { pixel_values: string; merged_grid_rows_cols: [number, number] }[];
  for (const [i, im] of meta.entries()) {
    const start = ids.indexOf(imgTokenId, from);
    const px = c.inputs[im.pixel_values]!;
    const [, H, W] = px.shape as [number, number, number];
    const rows = Math.floor(H / patch / merge);
    const cols = Math.floor(W / patch / merge);
    expect([rows, cols]).toEqual(im.merged_grid_rows_cols);
    images.push({ start, rows, cols, image: { pixels: px.data as Float32Array, height: H, width: W }, key: `${c.json.name}/${i}` });
    from = start + rows * (cols + 1);
  }
  return { ids, images };
}

async function read(t: { buffer: GPUBuffer; numel: number }): Promise<Float32Array> {
  return new Float32Array(await readBuffer(f.gpu, t.buffer, 0, t.numel * 4));
}

function report(c: GoldenCase, name: string, got: Float32Array) {
  const r = expectClose(got, c.expected[name]!.data, tol(c, name, true), `${c.json.name} ${name}`);
  console.log(`[golden mistral3 f32] ${c.json.name} ${name}: max abs err ${r.maxAbs.toExponential(2)} (strict atol ${tol(c, name, true).atol})`);
  return r;
}

describe('mistral3-tiny-a f32 goldens', () => {
  it('loads as mistral3 with the merger projector and YaRN', () => {
    const c = f.model.config;
    expect(c.modelType).toBe('mistral3');
    expect(c.projector.spatialMergeSize).toBe(2);
    expect(c.text.rope.type).toBe('yarn');
    expect(f.model.tokenPixels).toBe(28);
  });

  for (const name of CASES) {
    it(`${name}: vision stages, every logit, greedy tokens`, async () => {
      const c = await loadCase(FIXTURE, name);
      const m = f.model;
      const prompt = mistral3Prompt(c, m.config.tokens.img, m.config.vision.patchSize, m.config.projector.spatialMergeSize);
      if (prompt.images.length) {
        const images = prompt.images.map((im) => im.image);
        let e!: ReturnType<typeof m.vision.embed>;
        record(f.gpu, 'embed', (ctx) => (e = m.vision.embed(ctx, images)));
        report(c, 'patch_embeds', await read(e.h));
        record(f.gpu, 'vision', (ctx) => m.vision.transformer(ctx, e.patches));
        report(c, 'vision_out', await read(e.out));
        let proj!: { buffer: GPUBuffer; numel: number };
        record(f.gpu, 'projector', (ctx) => (proj = m.projector.project(ctx, e.out, e.patches, e.grids)));
        expect(proj.numel).toBe(c.expected.projector_out!.data.length);
        report(c, 'projector_out', await read(proj));
      }

      await checkDecoder(m, c, prompt, report);
    });
  }

  it('refuses a prompt whose token grid is the patch grid instead of the merged grid', async () => {
    const c = await loadCase(FIXTURE, 'odd_grid_direct');
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
