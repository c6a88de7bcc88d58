/**
 * Global setup of the `e2e` Vitest project: makes sure `dist/demo/` (the built static demo) is
 * there and newer than every input (demo/, public/, src/, shaders/, vite.demo.config.ts,
 * package-lock.json); otherwise builds it once with `vite build --config vite.demo.config.ts`, in
 * a child process with NODE_ENV=production (inside Vitest NODE_ENV is "test", which would make
 * Vite build a development bundle: no service worker).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const demoDist = resolve(repoRoot, 'dist/demo');

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = s.mtimeMs;
  for (const e of readdirSync(path)) t = Math.max(t, newest(join(path, e)));
  return t;
}

export function demoIsStale(): boolean {
  const built = join(demoDist, 'index.html');
  if (!existsSync(built) || !existsSync(join(demoDist, 'sw.js')) || !existsSync(join(demoDist, 'precache.json'))) return true;
  const inputs = ['demo', 'public', 'src', 'shaders', 'vite.demo.config.ts', 'package-lock.json'].map((p) => newest(resolve(repoRoot, p)));
  return Math.max(...inputs) > statSync(built).mtimeMs;
}

export default async function setup(): Promise<void> {
  if (!demoIsStale()) return;
  const t0 = Date.now();
  const vite = resolve(repoRoot, 'node_modules/vite/bin/vite.js');
  execFileSync(process.execPath, [vite, 'build', '--config', 'vite.demo.config.ts', '--logLevel', 'warn'], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: 'inherit',
  });
  console.log(`[e2e] built dist/demo in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
