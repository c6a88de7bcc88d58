#!/usr/bin/env node
/**
 * Launcher of the `pixtral-webgpu` command (`cli/main.ts`: convert, ask, info, ...).
 * Published package: runs the built `dist/cli/main.js` (WGSL inlined). Source checkout (only .ts
 * exists): registers the `tsx` loader (a devDependency) and `raw-import-hook.js` (WGSL `?raw`
 * imports) in this process and runs `cli/main.ts`.
 */
import { existsSync } from 'node:fs';
import { register as registerHook } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../cli/main.ts', import.meta.url);

async function load() {
  if (existsSync(fileURLToPath(built))) return import(built.href);
  if (!existsSync(fileURLToPath(source))) {
    throw new Error(`neither dist/cli/main.js nor cli/main.ts found under ${root} (broken install?)`);
  }
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    throw new Error('running from a source checkout needs the "tsx" devDependency: run "npm install" (or "npm run build")');
  }
  register();
  // Registered after tsx, so it sees `?raw` specifiers first.
  registerHook(new URL('./raw-import-hook.js', import.meta.url));
  return import(pathToFileURL(fileURLToPath(source)).href);
}

try {
  const { main } = await load();
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`pixtral-webgpu: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
