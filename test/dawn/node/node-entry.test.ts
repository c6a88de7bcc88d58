/**
 * `pixtral-webgpu/node` in-process on Dawn (lavapipe in CI): `loadPixtral` on the embedded q4
 * model folder, read in place, answers the colour question for a file path, a Buffer, a PDF page
 * (`file.pdf:2`) and a PDF given as bytes with `pages`, with the reference answers of the
 * tiny model (greedy decoding reproduces the float64 oracle's tokens, so the text must match
 * exactly); the same ChatStream/stats as the browser; bad images fail with an ImageError naming
 * the file, before any GPU work. One model load for the file: the prefill pipelines compile once.
 */
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageError } from '../../../src/errors.js';
import { loadPixtral, type NodePixtralModel } from '../../../src/node/index.js';
import { COLOR, COLOR_QUESTION, MODEL_Q4, SAMPLES, twoPagePdf } from './samples.js';

process.env.VK_ICD_FILENAMES ??= '/usr/share/vulkan/icd.d/lvp_icd.json';

let model: NodePixtralModel;
let pdfPath: string;

beforeAll(async () => {
  model = await loadPixtral({ url: MODEL_Q4, dtype: 'q4' });
  const dir = await mkdtemp(join(tmpdir(), 'pixtral-node-'));
  pdfPath = join(dir, 'two.pdf');
  await writeFile(pdfPath, await twoPagePdf());
}, 600_000);

afterAll(async () => {
  await model?.dispose();
});

const ask = (image: unknown, extra: object = {}) =>
  [{ role: 'user' as const, content: [{ type: 'image' as const, image: image as string, ...extra }, { type: 'text' as const, text: COLOR_QUESTION }] }];

describe('loadPixtral (Node, Dawn)', () => {
  it('reports the model and the Dawn adapter', () => {
    expect(model.info).toMatchObject({ name: 'pixtral-tiny-screens', dtype: 'q4', modelType: 'pixtral', fromCache: true });
    expect(model.info.adapter.description.length).toBeGreaterThan(0);
    // lavapipe is a CPU adapter: the prefill keeps the tiled kernels even where it has subgroup matrices.
    if (/llvmpipe|lavapipe/i.test(model.info.adapter.description)) {
      expect(model.info.adapter.prefillMatmul).toBe('tiled');
      expect(model.info.adapter.prefillAttention).toBe('simt');
    }
  });

  it('streams the reference answer for an image file path (ChatStream + stats)', async () => {
    const stream = model.chat(ask(join(SAMPLES, 'screen_00.png')), { maxTokens: 4, temperature: 0 });
    let text = '';
    for await (const d of stream) text += d;
    const stats = await stream.stats;
    expect(text).toBe(COLOR['screen_00.png']);
    // screen_00 is 222x34 -> grid 2x8 -> 2 * (8 + 1) image tokens.
    expect(stats).toMatchObject({ imageTokens: 18, finishReason: 'eos', imagesEncoded: 1 });
  }, 600_000);

  it('a Buffer, a PDF page by path suffix and PDF bytes with pages give the reference answers', async () => {
    const png = await readFile(join(SAMPLES, 'screen_02.png'));
    expect((await model.complete(ask(png), { maxTokens: 4 })).text).toBe(COLOR['screen_02.png']);
    expect((await model.complete(ask(`${pdfPath}:2`, { dpi: 72 }), { maxTokens: 4 })).text).toBe(COLOR['screen_06.png']);
    expect((await model.complete(ask(await readFile(pdfPath), { pages: [1], dpi: 72 }), { maxTokens: 4 })).text).toBe(COLOR['screen_09.png']);
  }, 600_000);

  it('an undecodable image is an ImageError naming the file; the model stays usable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pixtral-node-'));
    const bad = join(dir, 'broken.png');
    await writeFile(bad, 'not an image at all');
    const e = await model.complete(ask(bad)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ImageError);
    expect((e as Error).message).toContain('broken.png');
    const page9 = await model.complete(ask(`${pdfPath}:7`, { dpi: 72 })).catch((x: unknown) => x);
    expect((page9 as Error).message).toMatch(/two\.pdf: no page 7 \(the PDF has 2 pages\)/);
    expect((await model.complete(ask(join(SAMPLES, 'screen_01.png')), { maxTokens: 4 })).text).toBe(COLOR['screen_01.png']);
  }, 600_000);
});
