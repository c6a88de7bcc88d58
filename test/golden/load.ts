/**
 * Loads a converted fixture model (written by test/global-setup.ts) through the real loader:
 * manifest + shards over HTTP into IndexedDB, then shard by shard into GPU buffers.
 */
import { Gpu } from '../../src/gpu/device.js';
import { loadModelFiles } from '../../src/weights/fetch.js';
import { uploadModel } from '../../src/weights/upload.js';
import { UploadedWeights } from '../../src/model/gpu-weights.js';
import { VisionLanguageModel, type VlmOptions } from '../../src/model/vlm.js';
import type { Manifest } from '../../src/weights/manifest.js';
import { fixtureUrl } from '../helpers/fixture-url.js';

export interface LoadedFixture {
  gpu: Gpu;
  manifest: Manifest;
  model: VisionLanguageModel;
  /** Destroys the model's GPU buffers and releases the store's hold on its files (a Web Lock). */
  dispose(): Promise<void>;
}

export async function loadFixtureModel(gpu: Gpu, name: string, opts: VlmOptions = {}): Promise<LoadedFixture> {
  const loaded = await loadModelFiles({ url: fixtureUrl(`/scratch/models/${name}/`) });
  const weights = await uploadModel(loaded.files, gpu);
  const model = new VisionLanguageModel(gpu, loaded.manifest.config, new UploadedWeights(gpu, weights), opts);
  return {
    gpu,
    manifest: loaded.manifest,
    model,
    dispose: async () => {
      model.destroy();
      await loaded.release();
    },
  };
}
