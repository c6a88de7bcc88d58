/**
 * `visionWeights: 'host'`: the vision transformer's layer weights in host memory, streamed
 * through two GPU layer slots (src/model/vision-slots.ts), one submit per layer. The encoder's
 * output must be the resident path's bit for bit (the same bytes through the same kernels, so no
 * tolerance), on the converted tiny Pixtral (its f32 and q4 conversions: f32 and f16 vision
 * weights; 2 layers: both slots, no reuse) and on the kq
 * GGUF pair's F16 mmproj (3 layers: slot 0 is refilled for layer 2, after layer 0 ran), and on
 * llama.cpp's mistral3 pair with its Q8_0 mmproj (block-quantised vision layers through the slots,
 * and the mistral3 projector's patch merger after them). The GPU bytes saved are read from the
 * runtime's ledger.
 */
import { describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import { fixtureUrl } from '../helpers/fixture-url.js';
import type { Gpu } from '../../src/gpu/device.js';
import { placeOnHost } from '../../src/gpu/host-buffer.js';
import { loadModelFiles } from '../../src/weights/fetch.js';
import { uploadModel } from '../../src/weights/upload.js';
import { UploadedWeights } from '../../src/model/gpu-weights.js';
import { ggufModel } from '../../src/gguf/mapping.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { blobSource } from '../../src/gguf/source.js';
import { GgufWeights } from '../../src/gguf/gpu-weights.js';
import { VisionLanguageModel, type ModelWeightMap } from '../../src/model/vlm.js';
import { isVisionLayerLabel, layerBuffers } from '../../src/model/vision-slots.js';
import { loadVisionWeights } from '../../src/model/vision.js';
import type { ModelConfig } from '../../src/config.js';
import { casePrompt, loadCase } from './cases.js';
import { mistral3Prompt, MISTRAL3_FIXTURE } from './mistral3-cases.js';

type Mode = 'gpu' | 'host';
interface Source {
  config: ModelConfig;
  upload(gpu: Gpu): Promise<{ map: ModelWeightMap; destroy(): void }>;
}

/** Loads `src` in `mode`, encodes the case's images (with the projector) and reads the encoder's output back. */
async function encodeIn(gpu: Gpu, src: Source, mode: Mode, images: { pixels: Float32Array; height: number; width: number }[]) {
  const before = gpu.ledger.liveBytes;
  const w = await (mode === 'host' ? placeOnHost(gpu, isVisionLayerLabel, () => src.upload(gpu)) : src.upload(gpu));
  const m = new VisionLanguageModel(gpu, src.config, w.map, { maxContext: 64, maxChunk: 32 });
  try {
    const liveBytes = gpu.ledger.liveBytes - before;
    // The projector's output rows: one per patch, or per merged patch (mistral3).
    let proj!: ReturnType<typeof m.projector.project>;
    const e = m.vision.run(images, (ctx, v) => (proj = m.projector.project(ctx, v.out, v.patches, v.grids)));
    const out = (await e.out.read()) as Float32Array;
    const projected = (await proj.read()) as Float32Array;
    // Bytes of one resident layer's weights, from the buffers themselves.
    const layerBytes = layerBuffers(loadVisionWeights(w.map, src.config.vision).layers[0]!).reduce((a, b) => a + b.size, 0);
    return { out, projected, liveBytes, layerBytes, slots: m.vision.slots };
  } finally {
    m.destroy();
    w.destroy();
  }
}

async function compare(src: Source, images: { pixels: Float32Array; height: number; width: number }[]) {
  const gpu = await getGpu();
  const gpuRun = await encodeIn(gpu, src, 'gpu', images);
  const hostRun = await encodeIn(gpu, src, 'host', images);
  expect(gpuRun.slots).toBeNull();
  expect(hostRun.slots).not.toBeNull();
  expect(gpuRun.out.every(Number.isFinite)).toBe(true);
  expect(hostRun.out).toEqual(gpuRun.out);
  expect(hostRun.projected).toEqual(gpuRun.projected);
  // The slots hold one resident layer's bytes each; the ledger sees every other layer gone.
  const layers = src.config.vision.numLayers;
  expect(hostRun.slots!.slotBytes).toBe(gpuRun.layerBytes);
  expect(gpuRun.liveBytes - hostRun.liveBytes).toBe((layers - Math.min(2, layers)) * gpuRun.layerBytes);
  return { layers, layerBytes: gpuRun.layerBytes };
}

/** A llama.cpp pair served under `dir`, mapped, as a Source uploaded through GgufWeights. */
async function ggufPair(dir: string, textName: string, mmprojName: string) {
  const file = async (name: string) => blobSource(await (await fetch(fixtureUrl(`${dir}/${name}`))).blob(), name);
  const text = await file(textName);
  const mmproj = await file(mmprojName);
  const model = ggufModel(await readGgufHeader(text), await readGgufHeader(mmproj));
  const src: Source = {
    config: model.config,
    upload: async (gpu) => {
      const w = await GgufWeights.upload(gpu, model, { text, mmproj });
      return { map: w, destroy: () => w.destroy() };
    },
  };
  return { model, src };
}

describe("visionWeights 'host': the encoder's output bit for bit as resident", () => {
  it.each([
    ['f32', 'f32'],
    ['q4', 'f16'],
  ])('converted tiny Pixtral %s (vision weights %s), two_images', async (dtype) => {
    const loaded = await loadModelFiles({ url: fixtureUrl(`/scratch/models/pixtral-tiny-a-${dtype}/`) });
    try {
      const c = await loadCase('pixtral-tiny-a', 'two_images');
      const config = loaded.manifest.config;
      const input = casePrompt(c, config.tokens.img, config.vision.patchSize);
      const src: Source = {
        config,
        upload: async (gpu) => {
          const w = await uploadModel(loaded.files, gpu);
          return { map: new UploadedWeights(gpu, w), destroy: () => w.destroy() };
        },
      };
      const r = await compare(src, input.images.map((im) => im.image));
      console.log(`[vision host] pixtral-tiny-a-${dtype}: ${r.layers} layers of ${r.layerBytes} bytes`);
    } finally {
      await loaded.release();
    }
  });

  it('kq GGUF pair, F16 mmproj with 3 layers (a slot reused), one_image_wide', async () => {
    const { model, src } = await ggufPair('/shared/fixtures/gguf/kq', 'pixtral-kq-tiny-text-q4_k_m.gguf', 'pixtral-kq-tiny-mmproj-f16.gguf');
    const c = await loadCase('gguf/kq/goldens/q4_k_m', 'one_image_wide');
    const input = casePrompt(c, model.config.tokens.img, model.config.vision.patchSize);
    const r = await compare(src, input.images.map((im) => im.image));
    expect(r.layers).toBe(3);
    console.log(`[vision host] kq mmproj f16: ${r.layers} layers of ${r.layerBytes} bytes`);
  });

  it('mistral3 GGUF pair (llama.cpp), Q8_0 mmproj: block-quantised layers through the slots, then the merger projector; two_images', async () => {
    const { model, src } = await ggufPair('/fixtures/gguf-mistral3', 'mistral3-tiny-a-text-f32.gguf', 'mistral3-tiny-a-mmproj-q8_0.gguf');
    const c = await loadCase(MISTRAL3_FIXTURE, 'two_images');
    const input = mistral3Prompt(c, model.config.tokens.img, model.config.vision.patchSize, model.config.projector.spatialMergeSize);
    expect(model.config.projector.spatialMergeSize).toBeGreaterThan(1);
    const r = await compare(src, input.images.map((im) => im.image));
    console.log(`[vision host] mistral3 mmproj q8_0: ${r.layers} layers of ${r.layerBytes} bytes`);
  });
});
