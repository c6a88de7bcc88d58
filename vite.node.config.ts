/**
 * Node build: `dist/node.js` (the `pixtral-webgpu/node` entry) and `dist/cli/main.js` (the
 * published `pixtral-webgpu` command, run by bin/pixtral-webgpu.js), ES modules for Node 20 with
 * the WGSL `?raw` imports inlined and every npm dependency left external (sharp, webgpu and
 * @napi-rs/canvas are native; they resolve from node_modules at run time). Runs after the
 * library build, into the same dist/ (not emptied).
 */
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false,
  build: {
    ssr: true,
    outDir: 'dist',
    emptyOutDir: false,
    target: 'node20',
    sourcemap: true,
    rollupOptions: {
      input: { node: 'src/node/index.ts', 'cli/main': 'cli/main.ts' },
      output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: 'node-chunks/[name]-[hash].js' },
    },
  },
});
