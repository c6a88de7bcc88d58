/**
 * `npx tsx bench/bundle-node.ts [OUT.mjs]`: bundles bench/node.ts into one ES module (default
 * bench-out/bench-node.mjs) with the WGSL `?raw` imports inlined, to copy to a GPU machine; `webgpu`
 * (dawn.node, a native binary) stays external: `npm install webgpu` next to the bundle there.
 */
import { build, type Plugin } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { resolve, dirname } from 'node:path';

const raw: Plugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: resolve(args.resolveDir, args.path.replace(/\?raw$/, '')),
      namespace: 'raw',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, async (args) => ({
      contents: await readFile(args.path, 'utf8'),
      loader: 'text',
      resolveDir: dirname(args.path),
    }));
  },
};

const outfile = process.argv[2] ?? 'bench-out/bench-node.mjs';
await build({
  entryPoints: [resolve(import.meta.dirname, 'node.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  plugins: [raw],
  external: ['webgpu'],
  logLevel: 'warning',
});
console.log(`wrote ${outfile}`);
