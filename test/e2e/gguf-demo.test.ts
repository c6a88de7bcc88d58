/**
 * The demo's GGUF picker, end to end on the built site in headless Chromium: the `screens` Q4_0
 * pair from a second origin (a Range + CORS host, like Hugging Face) given as two URLs, and the
 * F16 pair given as two files through the file inputs (`setInputFiles`). Each time the headers'
 * facts (architecture, quant mix, size, vision tower, fits this adapter) are shown before Load
 * reads a weight, then the pair loads and answers sample questions as the float64 reference does
 * on the same dequantised weights (`ref_answers_dequant.json`); and a `?model=...&mmproj=...` link
 * preselects a pair and shows its facts without loading it. Screenshots: test-results/demo-gguf*.png.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright';
import { chromiumArgs, chromiumPath } from '../chromium.js';
import { serveFixtureFile, sharedDir } from '../fixture-server.js';
import { serveStatic, type StaticServer } from './server.js';
import { demoDist, repoRoot } from './global-setup.js';

const SCREENS = resolve(sharedDir, 'fixtures/gguf/screens');
const SAMPLES = resolve(sharedDir, 'models/pixtral-tiny-screens/samples');
const OUT = resolve(repoRoot, 'test-results');
const ref = JSON.parse(readFileSync(resolve(SCREENS, 'ref_answers_dequant.json'), 'utf8')) as {
  pairs: Record<string, { files: [string, string]; answers: { image: string; question_type: string; text: string }[] }>;
};
const questions = JSON.parse(readFileSync(resolve(SAMPLES, 'questions.json'), 'utf8')) as { image: string; question: string; question_type: string }[];

let site: StaticServer;
let host: { url: string; ranges: { path: string; bytes: number }[]; close(): Promise<void> };
let browser: Browser;

/** The fixture files from another origin, with Range and CORS, logging every range served. */
async function ggufHost(): Promise<typeof host> {
  const ranges: { path: string; bytes: number }[] = [];
  const server: Server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Range');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    ranges.push({ path: new URL(req.url!, 'http://x').pathname, bytes: m ? Number(m[2]) - Number(m[1]) + 1 : Infinity });
    serveFixtureFile(req, res, () => res.writeHead(404).end('not found'));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ranges,
    close: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

/** Asks one sample question through the UI (image added as a file); the answer text. */
async function ask(p: Page, image: string, question: string): Promise<string> {
  await p.click('#new-conversation');
  for (let n = await p.locator('#image-list > li').count(); n > 0; n--) await p.locator('#image-list > li button').first().click();
  await p.setInputFiles('#image-input', resolve(SAMPLES, image));
  await p.locator('#image-list > li').first().waitFor();
  await p.fill('#question', question);
  await p.click('#ask');
  const turn = p.locator('#conversation > li').last();
  await turn.and(p.locator('[data-done]')).waitFor({ timeout: 300_000 });
  expect(await turn.getAttribute('data-done'), (await turn.locator('.stats').textContent()) ?? '').toBe('ok');
  return (await turn.locator('.answer').textContent()) ?? '';
}

/** The pair's first answers of the float64 reference, asked through the UI. */
async function expectReferenceAnswers(p: Page, pair: string, count: number): Promise<void> {
  for (const a of ref.pairs[pair]!.answers.slice(0, count)) {
    const q = questions.find((x) => x.image === a.image && x.question_type === a.question_type)!;
    expect(await ask(p, q.image, q.question), `${pair} ${a.image} ${a.question_type}`).toBe(a.text);
  }
}

async function openDemo(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${site.url}?autoload=0`);
  await page.waitForFunction(() => typeof window.pixtralDemo === 'object', null, { timeout: 120_000 });
  await page.check('input[name="model-choice"][value="gguf"]');
  expect(await page.isVisible('#gguf-fields')).toBe(true);
  expect(await page.isVisible('#model-url')).toBe(false);
  return { page, errors };
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  site = await serveStatic(demoDist);
  host = await ggufHost();
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs });
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await host?.close();
});

describe('demo: a llama.cpp GGUF pair in the model picker', () => {
  it('two URLs (screens Q4_0 + mmproj F16): header facts before any weight, then loads and answers', async () => {
    const { page, errors } = await openDemo();
    try {
      const [textFile, mmFile] = ref.pairs['q4_0:f16']!.files;
      await page.fill('#gguf-url', `${host.url}/shared/fixtures/gguf/screens/${textFile}`);
      await page.fill('#gguf-mmproj-url', `${host.url}/shared/fixtures/gguf/screens/${mmFile}`);
      await page.click('#gguf-inspect');
      const facts = page.locator('#gguf-facts');
      await expect.poll(() => facts.textContent(), { timeout: 60_000 }).toContain('Fits this adapter');
      const text = (await facts.textContent())!;
      expect(text).toContain('Architecture: Pixtral (llama text model "pixtral-tiny-screens"');
      // Q4_0 for every 2-D text tensor but `output` (Q8_0), F32 norms; the mmproj is F16 + F32.
      expect(text).toMatch(/Quant mix: Q4_0 \d+%, Q8_0 \d+%, F32 (<1|\d+)% \(text\); F16 \d+%, F32 (<1|\d+)% \(mmproj\)/);
      expect(text).toMatch(/Size: [\d.]+ MB \(text [\d.]+ [KM]B, mmproj [\d.]+ [KM]B\), [\d.]+ M parameters\./);
      expect(text).toMatch(/Vision tower: \d+ layers, hidden 96, patch \d+ px, images up to \d+ px/);
      expect(await facts.getAttribute('data-fits')).toBe('true');
      // Only header ranges so far: far less than either file.
      const read = (f: string) => host.ranges.filter((r) => r.path.endsWith(f)).reduce((a, r) => a + r.bytes, 0);
      expect(read(textFile)).toBeLessThan(statSync(resolve(SCREENS, textFile)).size);
      expect(read(mmFile)).toBeLessThan(statSync(resolve(SCREENS, mmFile)).size);
      expect(host.ranges.every((r) => Number.isFinite(r.bytes))).toBe(true); // never a whole-file GET

      await page.click('#model-load');
      await expect.poll(() => page.textContent('#model-status'), { timeout: 300_000 }).toMatch(/^Loaded pixtral-tiny-screens \(GGUF pair, /);
      await expectReferenceAnswers(page, 'q4_0:f16', 3);
      await page.screenshot({ path: resolve(OUT, 'demo-gguf.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('two files from disk (setInputFiles, screens F16 pair): facts, load in place, answers', async () => {
    const { page, errors } = await openDemo();
    try {
      const [textFile, mmFile] = ref.pairs['f16:f16']!.files;
      const before = host.ranges.length;
      await page.setInputFiles('#gguf-file', resolve(SCREENS, textFile));
      await page.setInputFiles('#gguf-mmproj-file', resolve(SCREENS, mmFile));
      const facts = page.locator('#gguf-facts');
      await expect.poll(() => facts.textContent(), { timeout: 60_000 }).toContain('Fits this adapter');
      expect(await facts.textContent()).toMatch(/Quant mix: F16 \d+%, F32 (<1|\d+)% \(text\)/);
      await page.click('#model-load');
      await expect.poll(() => page.textContent('#model-status'), { timeout: 300_000 }).toMatch(/^Loaded pixtral-tiny-screens \(GGUF pair from files, /);
      await expectReferenceAnswers(page, 'f16:f16', 2);
      await page.screenshot({ path: resolve(OUT, 'demo-gguf-files.png'), fullPage: true });
      // Read in place: nothing went over the network for the files.
      expect(host.ranges.length).toBe(before);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('a ?model=<text.gguf>&mmproj=<mmproj.gguf> link preselects the pair and shows its facts, loading nothing', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      const [textFile, mmFile] = ref.pairs['q8_0:f16']!.files;
      const text = `${host.url}/shared/fixtures/gguf/screens/${textFile}`;
      const mmproj = `${host.url}/shared/fixtures/gguf/screens/${mmFile}`;
      const before = host.ranges.length;
      await page.goto(`${site.url}?model=${encodeURIComponent(text)}&mmproj=${encodeURIComponent(mmproj)}`);
      await page.waitForFunction(() => typeof window.pixtralDemo === 'object', null, { timeout: 120_000 });
      expect(await page.locator('input[name="model-choice"][value="gguf"]').isChecked()).toBe(true);
      expect(await page.inputValue('#gguf-url')).toBe(text);
      expect(await page.inputValue('#gguf-mmproj-url')).toBe(mmproj);
      expect(await page.textContent('#model-status')).toMatch(/^GGUF pair from the link: .*text-q8_0\.gguf \+ .*mmproj-f16\.gguf \(on 127\.0\.0\.1:\d+\)\. Press Load/);
      await expect.poll(() => page.textContent('#gguf-facts'), { timeout: 60_000 }).toContain('Fits this adapter');
      expect(await page.textContent('#gguf-facts')).toMatch(/Quant mix: Q8_0 \d+%, F32 <1% \(text\)/);
      expect(await page.evaluate(() => window.pixtralDemo.model())).toBeNull();
      // Header ranges only: a few per file, far less than the files.
      const read = host.ranges.slice(before).reduce((a, r) => a + r.bytes, 0);
      expect(read).toBeLessThan(statSync(resolve(SCREENS, textFile)).size);
      // A plain-HTTP link to another host is ignored, as for converted models.
      await page.goto(`${site.url}?model=${encodeURIComponent('http://models.example/a.gguf')}&mmproj=${encodeURIComponent(mmproj)}`);
      await page.waitForFunction(() => typeof window.pixtralDemo === 'object');
      expect(await page.textContent('#model-status')).toMatch(/The model link was ignored: http:\/\/models\.example is not accepted/);
      expect(await page.locator('input[name="model-choice"][value="gguf"]').isChecked()).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
