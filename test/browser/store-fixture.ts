/**
 * Writes the synthetic model of `store-fixture-data.ts` to `.scratch/store-fixture/`, which the
 * Vite dev server serves at `/scratch/store-fixture/` (test/fixture-server.ts). Usable as a
 * Vitest `globalSetup` (runs in Node before the browser project) or by hand:
 * `npx tsx test/browser/store-fixture.ts`. The browser test also writes it itself (through
 * Vitest's `commands.writeFile`) when it is missing or stale.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildStoreFixture, STORE_FIXTURE_DIR } from './store-fixture-data.js';

const dir = resolve(import.meta.dirname, '../../.scratch', STORE_FIXTURE_DIR);

/** Writes the fixture unless an identical one is there already; returns its folder. */
export async function ensureStoreFixture(): Promise<string> {
  const fx = await buildStoreFixture();
  const want = fx.files.get('manifest.json')!;
  const have = await readFile(resolve(dir, 'manifest.json')).catch(() => null);
  if (have && Buffer.compare(have, want) === 0) return dir;
  await mkdir(dir, { recursive: true });
  // manifest.json last: its presence means the shards are complete.
  for (const [name, bytes] of fx.files) if (name !== 'manifest.json') await writeFile(resolve(dir, name), bytes);
  await writeFile(resolve(dir, 'manifest.json'), want);
  return dir;
}

/** Vitest globalSetup entry. */
export default async function setup(): Promise<void> {
  await ensureStoreFixture();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(`store fixture in ${await ensureStoreFixture()}`);
}
