/**
 * The demo page (demo/): `npm run demo` serves it with Vite's dev server (the URL is printed by
 * Vite, the browser is not opened), and `vite build --config vite.demo.config.ts` (part of
 * `npm run build`) emits it as a static site into `dist/demo/` with relative paths (`base: './'`),
 * deployable to any static host. `public/` (the embedded converted models) is copied into it.
 *
 * A small plugin emits the service worker (demo/sw.ts, types stripped, no imports: a classic
 * script) as `sw.js` at the site root, and `precache.json`, the list of every file of the app
 * shell (HTML, JS, CSS, worker chunks, the pdf.js worker), which the service worker caches when
 * it installs. Model weights are not in it: they live in IndexedDB (the library's cache).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, transformWithOxc, type Plugin } from 'vite';

const root = resolve(import.meta.dirname, 'demo');

/** Emits `sw.js` (from demo/sw.ts) and `precache.json`: { version, files } for it. */
function serviceWorker(): Plugin {
  const source = resolve(root, 'sw.ts');
  return {
    name: 'pixtral-demo-service-worker',
    apply: 'build',
    async generateBundle(_opts, bundle) {
      const files = Object.keys(bundle)
        .filter((f) => !f.endsWith('.map') && !f.startsWith('models/'))
        .sort();
      const hash = createHash('sha256');
      for (const f of files) {
        const item = bundle[f]!;
        hash.update(f);
        hash.update(item.type === 'chunk' ? item.code : typeof item.source === 'string' ? item.source : Buffer.from(item.source));
      }
      const version = hash.digest('hex').slice(0, 16);
      this.emitFile({ type: 'asset', fileName: 'precache.json', source: JSON.stringify({ version, files: ['./', ...files] }, null, 1) });
      // Types stripped only: the file has no imports, and `export {}` (there for the type
      // checker) is dropped, so it runs as a classic service worker in every browser.
      const ts = readFileSync(source, 'utf8');
      const { code } = await transformWithOxc(ts, source, { lang: 'ts' });
      const js = code.replace(/^export\s*\{\s*\};?\s*$/m, '');
      if (/^\s*(import|export)\b/m.test(js)) throw new Error('demo/sw.ts must not import or export anything');
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: js });
    },
  };
}

export default defineConfig({
  root,
  base: './',
  publicDir: resolve(import.meta.dirname, 'public'),
  server: { open: false, host: '127.0.0.1' },
  preview: { open: false, host: '127.0.0.1' },
  plugins: [serviceWorker()],
  worker: { format: 'es' },
  build: {
    outDir: resolve(import.meta.dirname, 'dist/demo'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // The embedded model's shards are binary assets copied as they are.
    assetsInlineLimit: 0,
  },
});
