/**
 * Node-side setup of the browser test project: converts the shared fixture models with the
 * project's own converter into `.scratch/models/<name>-<dtype>/`, served to the page at
 * `/scratch/models/...`, so golden tests load weights through the real converter, manifest and
 * loader path.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { convert } from '../cli/convert.js';
import { convertGguf } from '../cli/convert-gguf.js';
import type { StoredDType } from '../src/weights/manifest.js';
import { scratchDir, sharedDir } from './fixture-server.js';

export const FIXTURE_MODELS: { name: string; input: string; dtypes: StoredDType[] }[] = [
  { name: 'pixtral-tiny-a', input: 'fixtures/pixtral-tiny-a', dtypes: ['f32', 'q4'] },
  { name: 'pixtral-tiny-screens', input: 'models/pixtral-tiny-screens', dtypes: ['f32', 'q4'] },
  { name: 'mistral3-tiny-a', input: 'fixtures/mistral3-tiny-a', dtypes: ['f32'] },
];

export async function convertFixtureModels(): Promise<void> {
  for (const m of FIXTURE_MODELS) {
    for (const dtype of m.dtypes) {
      const output = resolve(scratchDir, 'models', `${m.name}-${dtype}`);
      // Always reconvert: the tiny models take well under a second, and a stale conversion
      // from an older converter would test the wrong thing.
      await convert({
        input: resolve(sharedDir, m.input),
        output,
        dtype,
        // f32 everywhere for the f32 model, so it can be held to the golden tolerances.
        visionDtype: dtype === 'f32' ? 'f32' : 'f16',
        force: existsSync(output),
        shardMb: 1, // several shards even for tiny models, so multi-shard paths are exercised
      });
    }
  }
}

/** The kq Q4_K_M GGUF pair converted with its blocks kept (`convert model.gguf --mmproj ...`). */
export const GGUF_CONVERTED = 'pixtral-kq-tiny-q4_k_m-gguf';

export async function convertGgufFixture(): Promise<void> {
  const kq = resolve(sharedDir, 'fixtures/gguf/kq');
  const output = resolve(scratchDir, 'models', GGUF_CONVERTED);
  await convertGguf({
    input: resolve(kq, 'pixtral-kq-tiny-text-q4_k_m.gguf'),
    mmproj: resolve(kq, 'pixtral-kq-tiny-mmproj-f16.gguf'),
    output,
    shardMb: 1,
    force: existsSync(output),
  });
}

export default async function setup(): Promise<void> {
  await convertFixtureModels();
  await convertGgufFixture();
}
