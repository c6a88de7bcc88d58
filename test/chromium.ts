/**
 * Where Debian's Chromium lives and the flags that give it a WebGPU adapter headless.
 * Shared by Vitest's browser project, the benchmark and the demo's end-to-end tests.
 */
import { existsSync } from 'node:fs';

export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error('Chromium not found: install Debian\'s `chromium` (apt-get install chromium) or set CHROMIUM_PATH');
}

export const chromiumArgs = [
  '--enable-unsafe-webgpu',
  // Workgroup memory is zeroed by Tint's own loop instead of the Vulkan extension: SwiftShader
  // compiles the extension's zeroing as code proportional to the bytes (a 16 KiB matmul tile
  // took 1 s to compile, 8 KiB 0.4 s; with Tint's loop a few ms). Same zeroed memory, same
  // results; each model load compiles 3-5x faster (README, "Tests").
  '--disable-dawn-features=use_vulkan_zero_initialize_workgroup_memory_extension',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];
