/**
 * Runs before every browser test file: prints the WebGPU adapter once per page so a CI log shows
 * which adapter executed the WGSL (vendor/architecture, shader-f16 yes/no).
 */
import { describeAdapter } from '../src/gpu/device.js';

const flag = '__pixtralAdapterPrinted';
const g = globalThis as Record<string, unknown>;
if (!g[flag]) {
  g[flag] = true;
  console.log(`[webgpu] ${await describeAdapter()}`);
}
