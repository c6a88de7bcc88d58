/**
 * Serving the store fixture to browser tests: `ensureServed` makes sure the fixture server
 * (test/fixture-server.ts) serves exactly the synthetic model of `store-fixture-data.ts`,
 * writing it through Vitest's file command when it is missing or stale, so each store test file
 * sets up what it needs whatever ran before; `serverLog` reads the server's own request log.
 */
import { commands } from 'vitest/browser';
import { sha256Hex } from '../../src/weights/hash.js';
import { STORE_FIXTURE_DIR, STORE_FIXTURE_URL, type StoreFixture } from './store-fixture-data.js';

/** Every request the fixture server has served so far (path and query), from its own log. */
export async function serverLog(): Promise<string[]> {
  return (await (await fetch('/__fixture-requests', { cache: 'no-store' })).json()) as string[];
}

function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Makes sure the server serves exactly this fixture; writes it through Vitest's file command if not. */
export async function ensureServed(f: StoreFixture): Promise<void> {
  const want = f.files.get('manifest.json')!;
  const same = async () => {
    const r = await fetch(`${STORE_FIXTURE_URL}manifest.json`, { cache: 'no-store' });
    return r.ok && (await sha256Hex(new Uint8Array(await r.arrayBuffer()))) === (await sha256Hex(want));
  };
  if (await same()) return;
  try {
    for (const [name, bytes] of f.files) {
      if (name !== 'manifest.json') await commands.writeFile(`.scratch/${STORE_FIXTURE_DIR}/${name}`, toBase64(bytes), 'base64');
    }
    await commands.writeFile(`.scratch/${STORE_FIXTURE_DIR}/manifest.json`, toBase64(want), 'base64');
  } catch (e) {
    throw new Error(`store fixture missing and not writable from the page (${(e as Error).message}): run \`npx tsx test/browser/store-fixture.ts\``);
  }
  if (!(await same())) throw new Error('store fixture not served at /scratch/store-fixture/: run `npx tsx test/browser/store-fixture.ts`');
}


/**
 * Serves a copy of the converted model at `from` (a `/scratch/...` folder URL) at
 * `/scratch/<dir>/`, its manifest renamed to `name`: same tensors, its own manifest hash, so a
 * test can hold, release and delete it without touching a model other test files hold.
 * Returns the copy's URL.
 */
export async function serveRenamedCopy(from: string, dir: string, name: string): Promise<string> {
  const get = async (file: string) => {
    const r = await fetch(`${from}${file}`, { cache: 'no-store' });
    if (!r.ok) throw new Error(`${from}${file}: HTTP ${r.status} (converted by test/global-setup.ts?)`);
    return new Uint8Array(await r.arrayBuffer());
  };
  const manifest = JSON.parse(new TextDecoder().decode(await get('manifest.json'))) as {
    name: string; shards: { name: string }[]; tokenizer: { file: string } | null;
  };
  for (const file of [...manifest.shards.map((s) => s.name), ...(manifest.tokenizer ? [manifest.tokenizer.file] : [])]) {
    await commands.writeFile(`.scratch/${dir}/${file}`, toBase64(await get(file)), 'base64');
  }
  manifest.name = name;
  await commands.writeFile(`.scratch/${dir}/manifest.json`, JSON.stringify(manifest));
  return `/scratch/${dir}/`;
}
