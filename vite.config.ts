/**
 * Library build: `dist/index.js` (the public API) and `dist/tokenizer.js` (the GPU-free
 * `pixtral-webgpu/tokenizer` subpath), ES modules with dependencies bundled and WGSL inlined,
 * so a statically served page can import them with no bundler and no dev server. The worker
 * is emitted as its own chunk and found relative to `import.meta.url`.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  // public/ holds the demo's assets (embedded model); the library build must not copy them.
  publicDir: false,
  // Relative asset URLs: the worker chunk is found next to index.js wherever dist/ is served.
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: { index: 'src/index.ts', tokenizer: 'src/text/tokenizer.ts' },
      formats: ['es'],
    },
  },
  worker: { format: 'es' },
});
