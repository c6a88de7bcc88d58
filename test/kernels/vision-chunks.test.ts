/**
 * The vision encoder's MLP and the projector run over row chunks so their intermediates stay
 * small (src/model/vision.ts, src/model/projector.ts). Each output row must be exactly what the
 * one-pass path computes (the path the goldens check): the matmul sums each element in the same
 * order whatever its row window, so the comparison is bit-for-bit, no tolerance. The matmul with
 * row windows itself is checked against the float64 reference in matmul.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PIXTRAL_12B_2409, type ModelConfig } from '../../src/config.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { geluInPlace } from '../../src/kernels/gelu.js';
import { RandomWeights } from '../../src/model/random-weights.js';
import { VisionEncoder, loadVisionWeights } from '../../src/model/vision.js';
import { Projector, loadProjectorWeights } from '../../src/model/projector.js';
import { linear } from '../../src/model/linear.js';
import { getGpu } from '../helpers/gpu.js';

// Small dimensions with Pixtral's ratios (I = 4 D): 18 x 18 = 324 patches of a 20 x 20 grid.
const CONFIG: ModelConfig = {
  ...PIXTRAL_12B_2409,
  vision: { ...PIXTRAL_12B_2409.vision, hiddenSize: 64, intermediateSize: 256, numHeads: 2, headDim: 32, numLayers: 2, patchSize: 4, imageSize: 80 },
  text: { ...PIXTRAL_12B_2409.text, hiddenSize: 96, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 48, intermediateSize: 128, vocabSize: 256 },
};
const SIDE = 18;

function image() {
  const px = SIDE * CONFIG.vision.patchSize;
  const pixels = Float32Array.from({ length: 3 * px * px }, (_, i) => Math.sin(i * 0.37) * 1.5);
  return { pixels, height: px, width: px };
}

describe('vision and projector row chunks', () => {
  it('the chunked MLP (budget = the image) gives the same bits as the whole MLP (budget 4x the image)', async () => {
    const gpu = await getGpu();
    const w = new RandomWeights(gpu, CONFIG, { decoder: 'f32', seed: 5 });
    const vw = loadVisionWeights(w, CONFIG.vision);
    const P = SIDE * SIDE;
    const chunked = new VisionEncoder(gpu, CONFIG.vision, vw, P);
    const whole = new VisionEncoder(gpu, CONFIG.vision, vw, 4 * P);
    try {
      // 324 x 64 / 256 = 81 rows per chunk: four chunks, the last one full; the other has room.
      expect(chunked.mlpRows).toBe(81);
      expect(whole.mlpRows).toBeGreaterThanOrEqual(P);
      let a!: Tensor;
      let b!: Tensor;
      record(gpu, 'chunked', (ctx) => (a = chunked.encode(ctx, [image()]).out));
      const got = (await a.read()) as Float32Array;
      record(gpu, 'whole', (ctx) => (b = whole.encode(ctx, [image()]).out));
      const want = (await b.read()) as Float32Array;
      expect(got.length).toBe(P * CONFIG.vision.hiddenSize);
      expect(want.every(Number.isFinite)).toBe(true);
      expect(got).toEqual(want);
    } finally {
      chunked.destroy();
      whole.destroy();
      w.destroy();
    }
  });

  it('the projector in row chunks gives the same bits as linear_1 -> GELU -> linear_2 over all rows', async () => {
    const gpu = await getGpu();
    const w = new RandomWeights(gpu, CONFIG, { decoder: 'f32', seed: 9 });
    const pw = loadProjectorWeights(w, CONFIG);
    const P = SIDE * SIDE;
    const Dv = CONFIG.vision.hiddenSize;
    const Dt = CONFIG.text.hiddenSize;
    const proj = new Projector(gpu, CONFIG, pw, P);
    const x = Tensor.from(gpu, Float32Array.from({ length: P * Dv }, (_, i) => Math.cos(i * 0.11)), [P, Dv], 'f32', 'x');
    const hidden = Tensor.empty(gpu, [P, Dt], 'f32', 'hidden');
    const out = Tensor.empty(gpu, [P, Dt], 'f32', 'out');
    try {
      expect(proj.hiddenRows).toBe(256); // 324 rows: a chunk of 256 and one of 68
      let y!: Tensor;
      record(gpu, 'projector', (ctx) => (y = proj.project(ctx, x, P)));
      const got = (await y.read()) as Float32Array;
      record(gpu, 'one pass', (ctx) => {
        linear(ctx, pw.linear1, x, hidden, P);
        geluInPlace(ctx, hidden);
        linear(ctx, pw.linear2, hidden, out, P);
      });
      const want = (await out.read()) as Float32Array;
      expect(want.every(Number.isFinite)).toBe(true);
      expect(got).toEqual(want);
    } finally {
      for (const t of [x, hidden, out]) t.destroy();
      proj.destroy();
      w.destroy();
    }
  });
});
