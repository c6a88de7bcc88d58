/**
 * Node module hook for a source checkout: `import text from './x.wgsl?raw'` (Vite's raw import,
 * used for every WGSL kernel) yields the file's text as the default export. Registered by
 * `bin/pixtral-webgpu.js` next to the `tsx` loader; the published build inlines WGSL instead.
 */
import { readFile } from 'node:fs/promises';

const RAW = /\?raw$/;

export async function resolve(specifier, context, next) {
  if (!RAW.test(specifier)) return next(specifier, context);
  const target = await next(specifier.replace(RAW, ''), context);
  return { url: `${target.url}?raw`, shortCircuit: true };
}

export async function load(url, context, next) {
  if (!RAW.test(url)) return next(url, context);
  const text = await readFile(new URL(url.replace(RAW, '')), 'utf8');
  return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
}
