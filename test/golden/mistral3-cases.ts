/**
 * The mistral3-tiny-a golden check of one case, shared by the converted model's test
 * (`mistral3.test.ts`) and llama.cpp's GGUF pair of the same weights (`gguf-mistral3.test.ts`):
 * patch embeddings, vision output, projector output (after norm + merge + MLP), logits of every
 * prompt position, last logits and 8 greedy tokens with their logits.
 */
import { expect } from 'vitest';
import { expectClose } from '../helpers/close.js';
import { readBuffer } from '../../src/gpu/tensor.js';
import { record } from '../../src/gpu/kernel.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { PrefillInput, VisionLanguageModel } from '../../src/model/vlm.js';
import { checkDecoder, tol, type GoldenCase } from './cases.js';

export const MISTRAL3_FIXTURE = 'mistral3-tiny-a';
export const MISTRAL3_CASES = ['text_only', 'one_image_wide', 'two_images', 'odd_grid_direct'];

/**
 * The prompt of a mistral3 case: the token grid is the MERGED grid, rows = floor(H / patch /
 * merge), cols = floor(W / patch / merge) (pixels need only be multiples of the patch, as in
 * odd_grid_direct); checked against case.json's merged grid and the [IMG] run in the ids.
 */
export function mistral3Prompt(c: GoldenCase, imgTokenId: number, patch: number, merge: number): PrefillInput {
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

/**
 * Checks every stage of case `c` on model `m` (on `gpu`) at each case.json's STRICT tolerance and logs the
 * worst error under `label`; returns the worst absolute error seen.
 */
export async function checkMistral3Case(gpu: Gpu, m: VisionLanguageModel, c: GoldenCase, label: string): Promise<number> {
  let worst = 0;
  const report = (cc: GoldenCase, name: string, got: Float32Array) => {
    const r = expectClose(got, cc.expected[name]!.data, tol(cc, name, true), `${cc.json.name} ${name}`);
    console.log(`[golden ${label}] ${cc.json.name} ${name}: max abs err ${r.maxAbs.toExponential(2)} (strict atol ${tol(cc, name, true).atol})`);
    worst = Math.max(worst, r.maxAbs);
    return r;
  };
  const read = async (t: { buffer: GPUBuffer; numel: number }) => new Float32Array(await readBuffer(gpu, t.buffer, 0, t.numel * 4));
  const prompt = mistral3Prompt(c, m.config.tokens.img, m.config.vision.patchSize, m.config.projector.spatialMergeSize);
  if (prompt.images.length) {
    const images = prompt.images.map((im) => im.image);
    let e!: ReturnType<typeof m.vision.embed>;
    record(gpu, 'embed', (ctx) => (e = m.vision.embed(ctx, images)));
    report(c, 'patch_embeds', await read(e.h));
    record(gpu, 'vision', (ctx) => m.vision.transformer(ctx, e.patches));
    report(c, 'vision_out', await read(e.out));
    let proj!: { buffer: GPUBuffer; numel: number };
    record(gpu, 'projector', (ctx) => (proj = m.projector.project(ctx, e.out, e.patches, e.grids)));
    expect(proj.numel).toBe(c.expected.projector_out!.data.length);
    report(c, 'projector_out', await read(proj));
  }
  await checkDecoder(m, c, prompt, report);
  return worst;
}
