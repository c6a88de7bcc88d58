/**
 * `loadPixtral({ visionWeights: 'host' })` end to end (worker, real loaders): a converted model's
 * goldens and a GGUF pair's greedy tokens hold with the vision layers in host memory, streamed
 * through two GPU slots per image (the encoder's bit-identity to the resident path is checked in
 * test/golden/vision-host.test.ts). Logit tolerance: each case.json's strict atol/rtol, as the
 * resident tests use (the same arithmetic).
 */
import { describe, expect, it } from 'vitest';
import { loadPixtral } from '../../src/index.js';
import { FormatError } from '../../src/errors.js';
import { expectClose } from '../helpers/close.js';
import { loadCase, tol, type GoldenCase } from '../golden/cases.js';

function imagesOf(c: GoldenCase) {
  return (c.json.images ?? []).map((im) => {
    const px = c.inputs[im.pixel_values]!;
    const [, height, width] = px.shape as [number, number, number];
    return { pixels: px.data as Float32Array, height, width };
  });
}

describe("loadPixtral({ visionWeights: 'host' })", () => {
  const runs = [
    { what: 'converted pixtral-tiny-a (f32)', fixture: 'pixtral-tiny-a', url: '/scratch/models/pixtral-tiny-a-f32/', mmproj: undefined, cases: ['two_images'] },
    {
      what: 'kq GGUF pair Q4_K_M + F16 mmproj',
      fixture: 'gguf/kq/goldens/q4_k_m',
      url: '/shared/fixtures/gguf/kq/pixtral-kq-tiny-text-q4_k_m.gguf',
      mmproj: '/shared/fixtures/gguf/kq/pixtral-kq-tiny-mmproj-f16.gguf',
      cases: ['one_image_wide'],
    },
  ];
  for (const r of runs) {
    it(`${r.what}: greedy tokens and prompt logits of the goldens`, async () => {
      const model = await loadPixtral({ url: r.url, mmproj: r.mmproj, maxContext: 64, kvCache: 'f32', visionWeights: 'host' });
      try {
        expect(model.info.visionWeights).toBe('host');
        for (const name of r.cases) {
          const c = await loadCase(r.fixture, name);
          const out = await model.generate({ inputIds: c.json.input_ids, images: imagesOf(c), maxNewTokens: 8, temperature: 0, returnLogits: true });
          expect(out.tokenIds, `${r.what} ${name}`).toEqual(c.json.greedy_tokens);
          expectClose(out.logits!, c.expected.logits!.data, tol(c, 'logits', true), `${r.what} ${name} logits`);
        }
      } finally {
        await model.dispose();
      }
    });
  }

  it('refuses an unknown visionWeights, naming the option', async () => {
    const bad = loadPixtral({ url: '/scratch/models/pixtral-tiny-a-f32/', visionWeights: 'x' as 'host' });
    await expect(bad).rejects.toBeInstanceOf(FormatError);
    await expect(bad).rejects.toThrow(/visionWeights must be "gpu" or "host" \(got string "x"\)/);
  });
});
