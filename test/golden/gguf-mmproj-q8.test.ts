/**
 * A quantised mmproj: llama.cpp's converter's Q8_0 mmproj of mistral3-tiny-a (vision and
 * projector linears in Q8_0 blocks; patch conv and norms F32) against its dequantised F32 twin
 * (`dequant_twin.py`: gguf-py's dequantisation of the same blocks, bit-identical to ggml's).
 * Both models compute with exactly the same weight values, so the vision output, the projector
 * output, every prompt logit and the greedy tokens must agree to float32 arithmetic: the Q8_0
 * block kernels (matmul for the patches, the vision MLP run whole since block weights take no
 * row window) against the dense f32 ones. Tolerance: each case.json's strict atol/rtol (~20x a
 * float32 run's error of the whole model), the same bound the goldens use for f32 arithmetic;
 * greedy tokens exact. (Measured: bit-identical on SwiftShader and lavapipe: a Q8_0 weight d*q,
 * an f16 scale times an int8, is exact in f32, and the block matmul sums in the dense one's
 * order.) The Q8_0 model is also checked to differ from the F32 checkpoint's goldens by more
 * than that bound (the test would otherwise not tell the files apart).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import { fixtureUrl } from '../helpers/fixture-url.js';
import { expectClose } from '../helpers/close.js';
import type { Gpu } from '../../src/gpu/device.js';
import { readBuffer } from '../../src/gpu/tensor.js';
import { record } from '../../src/gpu/kernel.js';
import { ggufModel } from '../../src/gguf/mapping.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { blobSource } from '../../src/gguf/source.js';
import { GgufWeights } from '../../src/gguf/gpu-weights.js';
import { typeName } from '../../src/gguf/types.js';
import { VisionLanguageModel } from '../../src/model/vlm.js';
import { argmax, loadCase, tol } from './cases.js';
import { mistral3Prompt, MISTRAL3_FIXTURE } from './mistral3-cases.js';

const dir = '/fixtures/gguf-mistral3';

async function file(name: string) {
  return blobSource(await (await fetch(fixtureUrl(`${dir}/${name}`))).blob(), name);
}

interface Loaded {
  m: VisionLanguageModel;
  weights: GgufWeights;
  types: string[];
}

let gpu: Gpu;
const models: Record<'q8' | 'twin', Loaded> = {} as never;

async function load(mmprojName: string): Promise<Loaded> {
  const text = await file('mistral3-tiny-a-text-f32.gguf');
  const mmproj = await file(mmprojName);
  const model = ggufModel(await readGgufHeader(text), await readGgufHeader(mmproj));
  const weights = await GgufWeights.upload(gpu, model, { text, mmproj });
  const types = model.tensors.filter((t) => t.file === 'mmproj').map((t) => typeName(t.info.type));
  return { m: new VisionLanguageModel(gpu, model.config, weights, { maxContext: 128, maxChunk: 16 }), weights, types };
}

beforeAll(async () => {
  gpu = await getGpu();
  models.q8 = await load('mistral3-tiny-a-mmproj-q8_0.gguf');
  models.twin = await load('mistral3-tiny-a-mmproj-q8_0-dequant.gguf');
});

afterAll(() => {
  for (const l of Object.values(models)) {
    l.m.destroy();
    l.weights.destroy();
  }
});

async function stages(l: Loaded, name: string) {
  const c = await loadCase(MISTRAL3_FIXTURE, name);
  const m = l.m;
  const prompt = mistral3Prompt(c, m.config.tokens.img, m.config.vision.patchSize, m.config.projector.spatialMergeSize);
  const read = async (t: { buffer: GPUBuffer; numel: number }) => new Float32Array(await readBuffer(gpu, t.buffer, 0, t.numel * 4));
  let e!: ReturnType<typeof m.vision.embed>;
  record(gpu, 'embed', (ctx) => (e = m.vision.embed(ctx, prompt.images.map((im) => im.image))));
  record(gpu, 'vision', (ctx) => m.vision.transformer(ctx, e.patches));
  const visionOut = await read(e.out);
  let proj!: { buffer: GPUBuffer; numel: number };
  record(gpu, 'projector', (ctx) => (proj = m.projector.project(ctx, e.out, e.patches, e.grids)));
  const projectorOut = await read(proj);
  m.cache.truncate(0);
  const r = await m.prefill(prompt, { returnLogits: true });
  const tokens: number[] = [];
  let last = await m.readLogits();
  for (let k = 0; k < 8; k++) {
    tokens.push(argmax(last));
    if (k < 7) {
      m.append(tokens.at(-1)!);
      last = await m.readLogits();
    }
  }
  return { c, visionOut, projectorOut, logits: r.logits!, tokens };
}

describe('Q8_0 mmproj (mistral3-tiny-a) against its dequantised F32 twin', () => {
  it('the files hold what they say: Q8_0 linears in one, F32 everywhere in the other', () => {
    // 2 layers x 7 linears + the projector's 2.
    expect(models.q8.types.filter((t) => t === 'Q8_0')).toHaveLength(16);
    expect(new Set(models.twin.types)).toEqual(new Set(['F32']));
  });

  for (const name of ['one_image_wide', 'two_images']) {
    it(`${name}: vision output, projector output, prompt logits and greedy tokens agree`, async () => {
      const q = await stages(models.q8, name);
      const t = await stages(models.twin, name);
      const c = q.c;
      const r1 = expectClose(q.visionOut, t.visionOut, tol(c, 'vision_out', true), `${name} vision_out`);
      const r2 = expectClose(q.projectorOut, t.projectorOut, tol(c, 'projector_out', true), `${name} projector_out`);
      const r3 = expectClose(q.logits, t.logits, tol(c, 'logits', true), `${name} logits`);
      expect(q.tokens).toEqual(t.tokens);
      // Q8_0 weights are not the checkpoint's: its goldens must not pass at the same bound.
      const off = Math.max(...c.expected.projector_out!.data.map((x, i) => Math.abs(x - q.projectorOut[i]!)));
      expect(off).toBeGreaterThan(tol(c, 'projector_out', true).atol);
      console.log(`[gguf mmproj q8_0] ${name}: max abs vs twin vision ${r1.maxAbs.toExponential(2)}, projector ${r2.maxAbs.toExponential(2)}, logits ${r3.maxAbs.toExponential(2)}; vs the f32 checkpoint's projector golden ${off.toExponential(2)}`);
    });
  }
});
