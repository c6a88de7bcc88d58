/**
 * llama.cpp's GGUF pair of mistral3-tiny-a (`test/fixtures/gguf-mistral3`: text
 * `general.architecture` `mistral3` with YaRN and the Llama-4 query scale in `mistral3.*` keys,
 * mmproj with the RMSNorm + 2x2 patch merger projector, both F32, written by llama.cpp's own
 * `convert_hf_to_gguf.py`) loaded by the GGUF path, against the same float64 goldens as the
 * converted model: every stage of every case. Being F32, the weights are bit-identical to the
 * checkpoint's, so any mapping error (a q/k row order, the merger's layout, the YaRN keys, the
 * query scale) shows at the strict tolerances of each case.json, as in `mistral3.test.ts`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import { fixtureUrl } from '../helpers/fixture-url.js';
import type { Gpu } from '../../src/gpu/device.js';
import { ggufModel, type GgufModel } from '../../src/gguf/mapping.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { blobSource } from '../../src/gguf/source.js';
import { GgufWeights } from '../../src/gguf/gpu-weights.js';
import { VisionLanguageModel } from '../../src/model/vlm.js';
import { loadCase } from './cases.js';
import { checkMistral3Case, MISTRAL3_CASES, MISTRAL3_FIXTURE } from './mistral3-cases.js';

const dir = '/fixtures/gguf-mistral3';

async function file(name: string) {
  return blobSource(await (await fetch(fixtureUrl(`${dir}/${name}`))).blob(), name);
}

let gpu: Gpu;
let model: GgufModel;
let weights: GgufWeights;
let m: VisionLanguageModel;

beforeAll(async () => {
  gpu = await getGpu();
  const text = await file('mistral3-tiny-a-text-f32.gguf');
  const mmproj = await file('mistral3-tiny-a-mmproj-f32.gguf');
  model = ggufModel(await readGgufHeader(text), await readGgufHeader(mmproj));
  weights = await GgufWeights.upload(gpu, model, { text, mmproj });
  m = new VisionLanguageModel(gpu, model.config, weights, { maxContext: 128, maxChunk: 16 });
});

afterAll(() => {
  m?.destroy();
  weights?.destroy();
});

describe('mistral3-tiny-a as llama.cpp GGUF (mistral3 + clip/pixtral with merger) against the float64 goldens', () => {
  it('maps the mistral3 keys: YaRN, its attention factor inputs, the query scale, the merger', () => {
    const c = model.config;
    expect(c.modelType).toBe('mistral3');
    expect(c.projector.spatialMergeSize).toBe(2);
    expect(c.text.rope).toEqual({
      type: 'yarn', factor: 16, originalMaxPositionEmbeddings: 16, betaFast: 1, betaSlow: 0.125,
      mscale: 1, mscaleAllDim: 0.5, llama4ScalingBeta: expect.closeTo(0.3, 6),
    });
    expect(c.text.ropeTheta).toBe(100);
    expect(model.tensors.some((t) => t.name === 'multi_modal_projector.patch_merger.merging_layer.weight')).toBe(true);
  });

  for (const name of MISTRAL3_CASES) {
    it(`${name}: vision stages, every logit, greedy tokens`, async () => {
      const worst = await checkMistral3Case(gpu, m, await loadCase(MISTRAL3_FIXTURE, name), 'gguf mistral3');
      expect(worst).toBeGreaterThan(0);
    });
  }
});
