/**
 * The benchmark sections in Node on Dawn, for GPU machines without a browser:
 *   node bench-out/bench-node.mjs [--out FILE.json] [--only a,b] [--models m,n] [--adapter software|N|name]
 *     [--tiny-model DIR]
 * where bench-node.mjs is this file bundled by `npx tsx bench/bundle-node.ts` (WGSL inlined; on
 * another machine, `npm install webgpu` next to it).
 * Same sections and JSON as `npm run bench` (bench/page/main.ts). The adapter comes from
 * src/node/gpu.ts (`--adapter`, else PIXTRAL_WEBGPU_ADAPTER, else the first); DAWN_FLAGS
 * (space-separated) replaces its default Dawn toggles. `--tiny-model`: the embedded model's folder
 * (public/models/pixtral-tiny-screens-q4), read in place, for e2e's `tiny-screens` (the page
 * fetches it from its server; Node has none).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { installWebGPU } from '../src/node/gpu.js';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// Before the engine's modules load: some read WebGPU globals (GPUBufferUsage) at import time.
const dawnFlags = process.env.DAWN_FLAGS?.split(' ').filter(Boolean);
await installWebGPU({ adapter: argValue('adapter'), ...(dawnFlags ? { dawnFlags } : {}) });
const { Gpu } = await import('../src/gpu/device.js');
const { runSections } = await import('./page/main.js');
const { e2eModels, tinyModelSource } = await import('./sections/e2e.js');
const { openModelFolder } = await import('../src/node/files.js');
e2eModels.only = argValue('models')?.split(',').filter(Boolean) ?? null;
const tiny = argValue('tiny-model');
if (tiny) Object.assign(tinyModelSource, { url: resolve(tiny), openModel: (o: { url: string }) => openModelFolder(o.url) });

const t0 = performance.now();
const gpu = await Gpu.create();
const only = argValue('only');
const result = await runSections(gpu, only ? only.split(',') : [], (line) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}`),
);
result.runtime = `node ${process.version} + dawn.node`;
const out = argValue('out');
const json = JSON.stringify(result, null, 2);
if (out) {
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(resolve(out), `${json}\n`);
}
console.log(json);
gpu.destroy();
process.exit(result.errors ? 1 : 0);
