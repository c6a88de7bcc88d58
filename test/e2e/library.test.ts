/**
 * The published library as a plain static page would use it: `npm run build`'s `dist/index.js`
 * (here built into a temporary folder with the same vite.config.ts), imported by a page with
 * no bundler and no dev server, starting its worker chunk relative to `import.meta.url`, loading
 * the embedded demo model from a folder beside it, and answering a screenshot question.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright';
import { chromiumArgs, chromiumPath } from '../chromium.js';
import { sharedDir } from '../fixture-server.js';
import { serveStatic, type StaticServer } from './server.js';
import { repoRoot } from './global-setup.js';

let site: string;
let server: StaticServer;
let browser: Browser;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>pixtral-webgpu from dist/</title>
<script type="module">
  import { loadPixtral, ContextLengthError } from './lib/index.js';
  try {
    const model = await loadPixtral({ url: './models/pixtral-tiny-screens-q4/', maxContext: 256 });
    const image = await (await fetch('./screen.png')).blob();
    const answer = await model.complete([{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: 'What color is the box?' }] }], { maxTokens: 4 });
    const err = await model.complete([{ role: 'user', content: 'x '.repeat(300) }]).catch((e) => e);
    await model.dispose();
    document.body.dataset.result = JSON.stringify({ text: answer.text, typed: err instanceof ContextLengthError, name: err.name });
  } catch (e) {
    document.body.dataset.result = JSON.stringify({ error: String(e && e.stack || e) });
  }
</script>`;

const FAIL_PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="module">
  import { loadPixtral } from './lib-no-worker/index.js';
  const t0 = performance.now();
  loadPixtral({ url: './models/pixtral-tiny-screens-q4/' }).then(
    () => (document.body.dataset.result = JSON.stringify({ loaded: true })),
    (e) => (document.body.dataset.result = JSON.stringify({ name: e.name, message: e.message, ms: performance.now() - t0 })),
  );
</script>`;

beforeAll(async () => {
  site = mkdtempSync(resolve(tmpdir(), 'pixtral-lib-'));
  const vite = resolve(repoRoot, 'node_modules/vite/bin/vite.js');
  execFileSync(process.execPath, [vite, 'build', '--outDir', resolve(site, 'lib'), '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: 'inherit',
  });
  cpSync(resolve(repoRoot, 'public/models/pixtral-tiny-screens-q4'), resolve(site, 'models/pixtral-tiny-screens-q4'), { recursive: true });
  cpSync(resolve(sharedDir, 'models/pixtral-tiny-screens/samples/screen_02.png'), resolve(site, 'screen.png'));
  writeFileSync(resolve(site, 'index.html'), PAGE);
  writeFileSync(resolve(site, 'fail.html'), FAIL_PAGE);
  server = await serveStatic(site);
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (site) rmSync(site, { recursive: true, force: true });
});

it('dist/index.js works from a statically served page: worker, model, typed errors', async () => {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  await page.goto(new URL('index.html', server.url).href);
  await page.waitForFunction(() => document.body.dataset.result, null, { timeout: 240_000 });
  const result = JSON.parse((await page.evaluate(() => document.body.dataset.result))!);
  expect(result.error).toBeUndefined();
  expect(result.text).toBe('green');
  expect(result).toMatchObject({ typed: true, name: 'ContextLengthError' });
  // The worker came from the built chunk beside index.js, not from any dev server.
  expect(server.requests.some((p) => /^\/lib\/assets\/worker-.*\.js$/.test(p))).toBe(true);
});

it('dist/index.js and what it imports statically carry no engine: no WGSL, which ships once, in the worker chunk', () => {
  const lib = resolve(site, 'lib');
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(resolve(lib, file), 'utf8');
    expect(code, `${file} holds WGSL`).not.toMatch(/@compute/);
    // Static imports only: `import(...)` (the in-thread engine) is fetched on demand.
    for (const m of code.matchAll(/(?:^|[;\s}])(?:import|export)\s*(?:[\w{}*,\s$]+from\s*)?["']\.\/([^"']+\.js)["']/g)) visit(m[1]!);
  };
  visit('index.js');
  const worker = readdirSync(resolve(lib, 'assets')).find((f) => /^worker-.*\.js$/.test(f))!;
  expect(readFileSync(resolve(lib, 'assets', worker), 'utf8')).toMatch(/@compute/);
});

it('fails with a typed error, not a hang, when the worker script cannot load', async () => {
  // A copy of the build without its worker chunk: the other test keeps its complete lib/.
  cpSync(resolve(site, 'lib'), resolve(site, 'lib-no-worker'), { recursive: true });
  for (const f of readdirSync(resolve(site, 'lib-no-worker/assets'))) if (/^worker-.*\.js$/.test(f)) rmSync(resolve(site, 'lib-no-worker/assets', f));
  const page = await browser.newPage();
  await page.goto(new URL('fail.html', server.url).href);
  await page.waitForFunction(() => document.body.dataset.result, null, { timeout: 30_000 });
  const result = JSON.parse((await page.evaluate(() => document.body.dataset.result))!);
  expect(result.name).toBe('WebGPUUnavailableError');
  expect(result.message).toMatch(/worker failed to start/);
});
