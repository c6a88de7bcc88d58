/**
 * End-to-end tests of the BUILT demo (dist/demo, served by a tiny static server on 127.0.0.1)
 * in Debian's headless Chromium on its WebGPU adapter (SwiftShader on CI), driven by Playwright.
 * One browser page for the whole file, in order:
 * 1. the page loads the embedded model; a sample screenshot added as a file (setInputFiles)
 *    gets the reference answers to the model's three questions, asked through the UI
 *    (follow-ups reuse the KV cache); full-page screenshots before and after an answer;
 * 2. a PDF made by the test (a sample drawn to canvas, JPEG-encoded, wrapped in a minimal PDF)
 *    is rendered by pdf.js and answered;
 * 3. Stop aborts an answer; a browser without WebGPU gets a plain message, not a crash;
 * 4. accuracy through the whole browser path (File -> decode -> preprocess -> vision -> decoder
 *    -> tokenizer) on all 36 questions of samples/, held to the model README's numbers less one
 *    per question type, with the exact agreement with `reference_answer` printed;
 * 5. offline (context.setOffline) after a visit of its own (a fresh browser context): a reload
 *    still loads and answers, and caches of older builds are pruned;
 * 6. a `?model=` link preselects the model and says what Load would download, downloading nothing.
 * Tests share the first page's loaded model but not its tray or conversation: each clears them.
 * Set E2E_SWEEP_DTYPES=q4,f32 to run the accuracy sweep on both embedded models (default q4,
 * the shipped one).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright';
import { chromiumArgs, chromiumPath } from '../chromium.js';
import { sharedDir } from '../fixture-server.js';
import { serveStatic, type StaticServer } from './server.js';
import { demoDist, repoRoot } from './global-setup.js';
import { pdfFromJpegs } from './pdf-writer.js';

interface Sample {
  image: string;
  width: number;
  height: number;
  question: string;
  question_type: 'color' | 'digit' | 'aspect';
  answer: string;
  reference_answer: string;
}

const SAMPLES = resolve(sharedDir, 'models/pixtral-tiny-screens/samples');
const OUT = resolve(repoRoot, 'test-results');
const samples: Sample[] = JSON.parse(readFileSync(resolve(SAMPLES, 'questions.json'), 'utf8'));
const sweepDtypes = (process.env.E2E_SWEEP_DTYPES ?? 'q4').split(',').map((s) => s.trim()).filter(Boolean);

let server: StaticServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

function sample(image: string, type: Sample['question_type']): Sample {
  const s = samples.find((x) => x.image === image && x.question_type === type);
  if (!s) throw new Error(`no ${type} question for ${image}`);
  return s;
}

async function waitForModel(p: Page): Promise<string> {
  await p.waitForFunction(() => typeof window.pixtralDemo === 'object', null, { timeout: 120_000 });
  await p.evaluate(() => window.pixtralDemo.ready);
  const status = (await p.textContent('#model-status')) ?? '';
  expect(status, status).toMatch(/^Loaded /);
  return status;
}

/** Asks through the UI; resolves with the answer text and the stats line of the new turn. */
async function askUi(p: Page, question: string): Promise<{ answer: string; stats: string }> {
  const before = await p.locator('#conversation > li').count();
  await p.fill('#question', question);
  await p.click('#ask');
  const turn = p.locator('#conversation > li').nth(before);
  await turn.and(p.locator('[data-done]')).waitFor({ timeout: 600_000 });
  expect(await turn.getAttribute('data-done'), (await turn.locator('.stats').textContent()) ?? '').toBe('ok');
  return { answer: (await turn.locator('.answer').textContent()) ?? '', stats: (await turn.locator('.stats').textContent()) ?? '' };
}

async function newConversation(p: Page): Promise<void> {
  await p.click('#new-conversation');
  await expect.poll(() => p.locator('#conversation > li').count()).toBe(0);
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await serveStatic(demoDist);
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  await waitForModel(page);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('demo (built static site)', () => {
  it('answers the three questions about a sample screenshot added as a file', async () => {
    const status = await page.textContent('#model-status');
    expect(status).toContain('pixtral-tiny-screens (q4');
    // Capability messages name the adapter and say what shader-f16 changes (nothing, today).
    const caps = (await page.textContent('#capabilities')) ?? '';
    expect(caps).toContain('WebGPU adapter:');
    expect(caps).toMatch(/shader-f16.*the model runs f32 activations on every adapter/);
    expect(caps).not.toContain('slower f32 path');
    expect(await page.textContent('#model-info')).toMatch(/f32 activations, f16 KV cache\.$/);
    // The cache panel lists the downloaded model.
    const cached = page.locator('#cache-list > li').filter({ hasText: 'pixtral-tiny-screens-q4/' });
    await expect.poll(() => cached.textContent()).toMatch(/complete · loaded now/);
    expect(await page.textContent('#storage-usage')).toMatch(/^Storage used: [\d.]+ [KMG]?B of [\d.]+ [KMGT]?B/);
    await page.setInputFiles('#image-input', resolve(SAMPLES, 'screen_02.png'));
    const item = page.locator('#image-list > li').first();
    await expect.poll(() => item.locator('.tokens').textContent()).toBe('72 image tokens (8×8 grid)');
    expect(await item.locator('input[type=checkbox]').isChecked()).toBe(true);

    const colour = sample('screen_02.png', 'color');
    await page.fill('#question', colour.question);
    await page.screenshot({ path: resolve(OUT, 'demo-before.png'), fullPage: true });
    const first = await askUi(page, colour.question);
    await page.screenshot({ path: resolve(OUT, 'demo-after.png'), fullPage: true });
    expect(first.answer).toBe(colour.reference_answer);
    expect(first.stats).toMatch(/image encode \d+ ms \(1 image\)/);
    expect(first.stats).toMatch(/prefill [\d.]+ tokens\/s/);
    expect(first.stats).toMatch(/decode [\d.]+ tokens\/s/);

    // The embedded model was trained on single-turn prompts only: each question in a new
    // conversation (which attaches the same image again).
    for (const type of ['digit', 'aspect'] as const) {
      const s = sample('screen_02.png', type);
      await newConversation(page);
      const r = await askUi(page, s.question);
      expect(r.answer, `${type}: ${r.stats}`).toBe(s.reference_answer);
      expect(r.stats).toContain('(72 for images)');
    }
    // A follow-up continues the conversation: the image is not re-encoded, the earlier turn
    // comes from the KV cache. (Its answer is not checked: the tiny model knows no multi-turn.)
    const follow = await askUi(page, colour.question);
    expect(follow.stats).toContain('no image encoded');
    const reused = Number(/(\d+) reused from the KV cache/.exec(follow.stats)?.[1]);
    expect(reused).toBeGreaterThan(72 + 15);
    // The model's text went in as text: no element was created inside an answer.
    expect(await page.locator('#conversation .answer *').count()).toBe(0);

    // Phone width: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: resolve(OUT, 'demo-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(overflow).toBeLessThanOrEqual(0);
  });

  it('renders a PDF page with pdf.js and answers about it', async () => {
    await newConversation(page);
    // Images an earlier test left in the tray would go along: remove whatever is there.
    for (let n = await page.locator('#image-list > li').count(); n > 0; n--) await page.locator('#image-list > li button').first().click();
    await expect.poll(() => page.locator('#image-list > li').count()).toBe(0);
    const s = sample('screen_07.png', 'color'); // orange, tall 69x251
    const png = readFileSync(resolve(SAMPLES, s.image)).toString('base64');
    const jpegB64 = await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
      const jpeg = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.95 });
      const out = new Uint8Array(await jpeg.arrayBuffer());
      let bin = '';
      for (const b of out) bin += String.fromCharCode(b);
      return btoa(bin);
    }, png);
    const pdf = pdfFromJpegs([
      { jpeg: Buffer.from(jpegB64, 'base64'), width: s.width, height: s.height },
      { jpeg: Buffer.from(jpegB64, 'base64'), width: s.width, height: s.height },
    ]);
    const pdfPath = resolve(OUT, 'sample.pdf');
    writeFileSync(pdfPath, pdf);
    const count = await page.locator('#image-list > li').count();
    await page.setInputFiles('#image-input', pdfPath);
    await page.locator('#image-list > li').nth(count + 1).waitFor({ timeout: 60_000 });
    const pages = page.locator('#image-list > li').filter({ hasText: 'sample.pdf' });
    expect(await pages.count()).toBe(2);
    // Page 1 is selected, page 2 is not; the rendered page has the sample's size (1 px per point).
    expect(await pages.nth(0).locator('input[type=checkbox]').isChecked()).toBe(true);
    expect(await pages.nth(1).locator('input[type=checkbox]').isChecked()).toBe(false);
    expect(await pages.nth(0).locator('.size').textContent()).toBe(`${s.width}×${s.height} px`);
    const r = await askUi(page, s.question);
    expect(r.answer, r.stats).toBe(s.reference_answer);
    expect(r.stats).toContain('(1 image)');
    await newConversation(page);
    const aspect = await askUi(page, sample(s.image, 'aspect').question);
    expect(aspect.answer).toBe(sample(s.image, 'aspect').reference_answer);
  });

  it('stops an answer with the Stop button', async () => {
    await newConversation(page);
    await page.getByText('Generation settings').click(); // opens the <details>
    await page.fill('#max-tokens', '200');
    await page.fill('#temperature', '1.5');
    try {
      await page.fill('#question', 'What color is the box?');
      await page.click('#ask');
      await expect.poll(() => page.locator('#stop').isEnabled()).toBe(true);
      await page.click('#stop');
      const turn = page.locator('#conversation > li').last();
      await turn.and(page.locator('[data-done]')).waitFor({ timeout: 120_000 });
      // Stopped before the first token (AbortError) or within one decode step after it.
      expect(await turn.locator('.stats').textContent()).toMatch(/^Stopped\.$| · stopped$/);
      expect(await page.locator('#ask').isEnabled()).toBe(true);
    } finally {
      await page.fill('#max-tokens', '256');
      await page.fill('#temperature', '0');
      await page.getByText('Generation settings').click();
    }
  });

  it('says plainly when the browser has no WebGPU', async () => {
    const p = await context.newPage();
    try {
      await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
      await p.goto(server.url);
      await p.waitForFunction(() => typeof window.pixtralDemo === 'object');
      expect(await p.textContent('#capabilities')).toContain('This browser has no WebGPU, so the model cannot run here.');
      expect(await p.locator('#model-load').isDisabled()).toBe(true);
      expect(await p.evaluate(() => window.pixtralDemo.model())).toBeNull();
    } finally {
      await p.close();
    }
  });

  for (const dtype of sweepDtypes) {
    it(`accuracy on all 36 sample questions through the browser path (${dtype})`, async () => {
      const current = await page.evaluate(() => window.pixtralDemo.model()?.info.dtype);
      if (current !== dtype) {
        await page.check(`input[name="model-choice"][value="${dtype}"]`);
        await page.click('#model-load');
        await expect
          .poll(() => page.evaluate(() => window.pixtralDemo.model()?.info.dtype ?? document.getElementById('model-status')?.textContent), { timeout: 300_000, interval: 500 })
          .toBe(dtype);
      }
      const t0 = Date.now();
      const rows: { s: Sample; got: string }[] = [];
      for (const s of samples) {
        const b64 = readFileSync(resolve(SAMPLES, s.image)).toString('base64');
        const got = await page.evaluate(
          async ([data, name, question]) => {
            const bytes = Uint8Array.from(atob(data!), (c) => c.charCodeAt(0));
            const file = new File([bytes], name!, { type: 'image/png' });
            return (await window.pixtralDemo.answerImage(file, question!, { maxTokens: 4 })).text;
          },
          [b64, s.image, s.question],
        );
        rows.push({ s, got });
      }
      const seconds = (Date.now() - t0) / 1000;
      const types = ['color', 'aspect', 'digit'] as const;
      const score = (t: string, key: 'answer' | 'reference_answer') => rows.filter((r) => r.s.question_type === t && r.got === r.s[key]).length;
      const lines = types.map((t) => `${t}: ${score(t, 'answer')}/12 right, ${score(t, 'reference_answer')}/12 = reference_answer`);
      const agree = rows.filter((r) => r.got === r.s.reference_answer).length;
      const right = rows.filter((r) => r.got === r.s.answer).length;
      const diffs = rows.filter((r) => r.got !== r.s.reference_answer).map((r) => `${r.s.image} ${r.s.question_type}: got "${r.got}", reference "${r.s.reference_answer}"`);
      console.log(
        `[e2e] accuracy (${dtype}, ${seconds.toFixed(0)} s for 36 questions): ${right}/36 right, ${agree}/36 equal to reference_answer\n  ` +
          lines.join('\n  ') +
          (diffs.length ? `\n  differs from the reference: ${diffs.join('; ')}` : ''),
      );
      // The model README: the reference gets colour 12/12, aspect 11/12, digit 6/12 on samples/.
      expect(score('color', 'answer')).toBeGreaterThanOrEqual(11);
      expect(score('aspect', 'answer')).toBeGreaterThanOrEqual(10);
      expect(score('digit', 'answer')).toBeGreaterThanOrEqual(5);
    });
  }

  it('works offline after one visit of its own: reload, load from IndexedDB, answer; old caches pruned', async () => {
    // A fresh context: its own service worker, caches and IndexedDB, primed by this visit.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await ctx.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    try {
      await p.goto(server.url);
      await waitForModel(p);
      // The service worker controls the page and has the app shell cached.
      await p.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
      const cached = await p.evaluate(async () => {
        const keys = await caches.keys();
        const shell = keys.find((k) => /^pixtral-demo-[0-9a-f]{16}$/.test(k));
        return shell ? (await (await caches.open(shell)).keys()).length : 0;
      });
      expect(cached).toBeGreaterThanOrEqual(5);
      // Caches an earlier build would have left (an unversioned runtime cache, an old version):
      // the next online visit prunes them.
      await p.evaluate(async () => {
        for (const name of ['pixtral-demo-runtime', 'pixtral-demo-00000000deadbeef', 'pixtral-demo-00000000deadbeef-runtime']) {
          await (await caches.open(name)).put('/stale', new Response('old'));
        }
      });
      await p.reload();
      await waitForModel(p);
      await expect
        .poll(() => p.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('pixtral-demo-')).sort()), { timeout: 60_000 })
        .toEqual(expect.not.arrayContaining(['pixtral-demo-runtime', 'pixtral-demo-00000000deadbeef', 'pixtral-demo-00000000deadbeef-runtime']));
      const left = await p.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('pixtral-demo-')));
      expect(left.every((k) => /^pixtral-demo-[0-9a-f]{16}(-runtime)?$/.test(k))).toBe(true);

      // Requests of the online visit still in flight would be counted as offline ones.
      await p.waitForLoadState('networkidle');
      await ctx.setOffline(true);
      const requests = server.requests.length;
      await p.reload();
      const status = await waitForModel(p);
      expect(status).toContain('from the browser cache');
      // Nothing the page or the library asked for reached the server. The browser's own update
      // check of the service-worker script (on register) bypasses Playwright's offline
      // emulation; truly offline it fails quietly and the installed worker keeps serving.
      expect(server.requests.slice(requests).filter((r) => r !== '/sw.js')).toEqual([]);
      const s = sample('screen_11.png', 'color');
      await p.setInputFiles('#image-input', resolve(SAMPLES, s.image));
      await p.locator('#image-list > li').first().waitFor();
      const r = await askUi(p, s.question);
      expect(r.answer, r.stats).toBe(s.reference_answer);
      expect(errors).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  it('a ?model= link preselects the model and says what Load would download, downloading nothing', async () => {
    const p = await context.newPage();
    try {
      const modelUrl = new URL('models/pixtral-tiny-screens-f32/', server.url).href;
      const before = server.requests.length;
      await p.goto(`${server.url}?model=${encodeURIComponent(modelUrl)}`);
      await p.waitForFunction(() => typeof window.pixtralDemo === 'object');
      const host = new URL(server.url).host;
      await expect.poll(() => p.textContent('#model-status')).toMatch(new RegExp(`^Model from the link: pixtral-tiny-screens \\(f32\\), [\\d.]+ [KMG]B to download from ${host.replace(/[.]/g, '\\.')}\\. Press Load`));
      expect(await p.locator('input[name="model-choice"][value="url"]').isChecked()).toBe(true);
      expect(await p.inputValue('#model-url')).toBe(modelUrl);
      expect(await p.evaluate(() => window.pixtralDemo.model())).toBeNull();
      // Only the manifest was read: no shard.
      const fetched = server.requests.slice(before).filter((r) => r.includes('/models/'));
      expect(fetched).toEqual(['/models/pixtral-tiny-screens-f32/manifest.json']);
      // A plain-HTTP link to another host is ignored.
      await p.goto(`${server.url}?model=${encodeURIComponent('http://models.example/pixtral/')}`);
      await p.waitForFunction(() => typeof window.pixtralDemo === 'object');
      expect(await p.textContent('#model-status')).toMatch(/The model link was ignored: http:\/\/models\.example is not accepted: model URLs must use https:/);
      expect(await p.locator('input[name="model-choice"][value="url"]').isChecked()).toBe(false);
      expect(await p.evaluate(() => window.pixtralDemo.model())).toBeNull();
    } finally {
      await p.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
