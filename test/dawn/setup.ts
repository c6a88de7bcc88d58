/**
 * Runs before every test file of the `dawn` project (Node, Dawn over Vulkan; lavapipe in CI):
 * installs Dawn's WebGPU (`src/node/gpu.ts`, adapter from PIXTRAL_WEBGPU_ADAPTER or the first),
 * prints the adapter once per run, and gives the loader an IndexedDB for its cache:
 * fake-indexeddb's in-memory one (Node has none; the real IndexedDB is tested in the browser
 * project). Fixture URLs resolve against the fixture server (test/helpers/fixture-url.ts).
 */
import 'fake-indexeddb/auto';
import { openSync, closeSync } from 'node:fs';
import { inject } from 'vitest';
import { installWebGPU } from '../../src/node/gpu.js';
import { describeAdapter } from '../../src/gpu/device.js';

await installWebGPU();

// Files run in separate workers: the first to create this run's marker prints the line.
try {
  closeSync(openSync(inject('adapterMarker'), 'wx'));
  console.log(`[webgpu] ${await describeAdapter()}`);
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
}
