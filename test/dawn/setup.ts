/**
 * Runs before every test file of the `dawn` project (Node, Dawn over Vulkan; lavapipe in CI):
 * installs Dawn's WebGPU (`src/node/gpu.ts`, adapter from PIXTRAL_WEBGPU_ADAPTER or the first),
 * prints the adapter once per run, and gives the files what the browser page gives them:
 * relative URLs (`/shared/...`, `/scratch/...`) resolve against the fixture server of
 * global-setup.ts, and the loader's IndexedDB cache is fake-indexeddb's in-memory IndexedDB
 * (Node has none; the real IndexedDB is tested in the browser project).
 */
import 'fake-indexeddb/auto';
import { openSync, closeSync } from 'node:fs';
import { inject } from 'vitest';
import { installWebGPU } from '../../src/node/gpu.js';
import { describeAdapter } from '../../src/gpu/device.js';

await installWebGPU();

const origin = inject('fixtureOrigin');
const nodeFetch = globalThis.fetch;
if (!(nodeFetch as { pixtralPageOrigin?: string }).pixtralPageOrigin) {
  const pageFetch = (input: RequestInfo | URL, init?: RequestInit) =>
    nodeFetch(typeof input === 'string' && input.startsWith('/') ? new URL(input, origin) : input, init);
  globalThis.fetch = Object.assign(pageFetch, { pixtralPageOrigin: origin }) as typeof fetch;
}

// Files run in separate workers: the first to create this run's marker prints the line.
try {
  closeSync(openSync(inject('adapterMarker'), 'wx'));
  console.log(`[webgpu] ${await describeAdapter()}`);
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
}
