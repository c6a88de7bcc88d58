// TEMPORARY (see node-entry.ts): resolve hook for the missing Node entry.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
export async function resolve(specifier, context, next) {
  if (/\.wgsl(\?raw)?$/.test(specifier) && context.parentURL) {
    return { url: new URL(specifier, context.parentURL).href, format: 'module', shortCircuit: true };
  }
  if (specifier.endsWith('/src/node/index.js') && context.parentURL) {
    const target = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(target)) && !existsSync(fileURLToPath(target).replace(/\.js$/, '.ts'))) {
      return next(new URL('./node-entry.ts', import.meta.url).href, context);
    }
  }
  return next(specifier, context);
}

// WGSL sources are imported as `?raw` text (Vite's convention): serve them as a default export.
export async function load(url, context, next) {
  const u = new URL(url);
  if (u.pathname.endsWith('.wgsl')) {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(fileURLToPath(new URL(u.pathname, u)), 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return next(url, context);
}
