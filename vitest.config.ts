/**
 * Projects: `node` runs pure logic (converter, tokenizer, manifest, prompt) in Node;
 * `browser` runs everything that needs WebGPU or IndexedDB inside Debian's headless Chromium
 * (SwiftShader adapter on CI), driven by Playwright; `dawn` runs the kernel and golden tests
 * again in Node on Dawn (lavapipe on CI: shader-f16, subgroups); `e2e` drives the built demo.
 * No WebGPU mock exists anywhere.
 */
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumPath, chromiumArgs } from './test/chromium.js';
import { fixtureServer } from './test/fixture-server.js';

export default defineConfig({
  plugins: [fixtureServer()],
  // Pre-bundled up front: discovering them mid-run makes Vite reload the test page.
  optimizeDeps: { include: ['comlink', 'idb-keyval', '@mlc-ai/web-xgrammar', 'ajv', 'openai', 'hash-wasm'] },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: ['test/unit/**/*.test.ts', 'test/node/**/*.test.ts'],
          testTimeout: 120_000,
        },
      },
      {
        // The built demo (dist/demo, rebuilt by the setup when stale) in headless Chromium
        // through Playwright, served by a tiny static server. Runs after the other projects
        // (groupOrder): it needs the whole CPU for SwiftShader.
        extends: true,
        test: {
          name: 'e2e',
          environment: 'node',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 900_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // The same kernel and golden tests in Node on Dawn (npm `webgpu`) over Vulkan: Mesa's
        // lavapipe unless VK_ICD_FILENAMES says otherwise, so CI runs the f16 and subgroup
        // variants that SwiftShader lacks. Set here, in the workers only: Chromium also uses
        // Vulkan and must keep its own adapter. PIXTRAL_WEBGPU_ADAPTER picks another adapter.
        extends: true,
        test: {
          name: 'dawn',
          environment: 'node',
          include: ['test/kernels/**/*.test.ts', 'test/golden/**/*.test.ts', 'test/dawn/**/*.test.ts'],
          env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/share/vulkan/icd.d/lvp_icd.json' },
          // A test's first dispatch of a shader variant includes lavapipe's LLVM compile of it:
          // over 5 minutes for some attention variants on a loaded 2-core machine (cold cache).
          testTimeout: 900_000,
          hookTimeout: 300_000,
          // lavapipe spreads each dispatch over every core and compiles each shader variant on
          // one: parallel files, or running beside the browser project, only contend. Last group.
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          // Real model shapes run in the browser project only (test/helpers/gpu.ts): on lavapipe
          // the shaders at head_dim 128 alone take minutes to compile.
          provide: { realShapes: false },
          setupFiles: ['test/dawn/setup.ts'],
          globalSetup: ['test/dawn/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/kernels/**/*.test.ts', 'test/browser/**/*.test.ts', 'test/golden/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // One Chromium page: SwiftShader on 2 cores gains nothing from parallel files.
          fileParallelism: false,
          setupFiles: ['test/browser-setup.ts'],
          globalSetup: ['test/global-setup.ts'],
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: chromiumPath(), args: chromiumArgs },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
