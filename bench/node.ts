/**
 * The benchmark sections in Node on Dawn, for GPU machines without a browser:
 *   WEBGPU_PACKAGE=/path/to/node_modules/webgpu node bench-node.mjs [--out FILE.json] [--only a,b]
 * where bench-node.mjs is this file bundled by `npx tsx bench/bundle-node.ts` (WGSL inlined).
 * Same sections and JSON as `npm run bench` (bench/page/main.ts).
 */
import './node-globals.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Gpu } from '../src/gpu/device.js';
import { runSections } from './page/main.js';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

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
