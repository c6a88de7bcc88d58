/**
 * Two projects: `node` runs pure logic (converter, tokenizer, manifest, prompt) in Node;
 * `browser` runs everything that needs WebGPU or IndexedDB inside Debian's headless Chromium
 * (SwiftShader adapter on CI), driven by Playwright. No WebGPU mock exists anywhere.
 */
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { chromiumPath, chromiumArgs } from './test/chromium.js';
import { fixtureServer } from './test/fixture-server.js';

export default defineConfig({
  plugins: [fixtureServer()],
  // Pre-bundled up front: discovering them mid-run makes Vite reload the test page.
  optimizeDeps: { include: ['js-tiktoken/lite', 'comlink', 'idb-keyval', '@mlc-ai/web-xgrammar', 'ajv'] },
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
