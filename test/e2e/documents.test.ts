/**
 * The demo's "Whole document" mode, end to end in the BUILT demo (dist/demo) in headless
 * Chromium on its WebGPU adapter: a generated 12-page PDF of the embedded model's kind of pages
 * (only page 5's box is red) is chosen in the mode's file input and asked "What color is the
 * box?" per page: the progress list fills in with the right colour for every page. Then the
 * synthesis on two pages: notes per page (found / not found), an answer, page citations whose
 * buttons show the page's thumbnail. (The embedded model does not know the synthesis question:
 * its notes and answer are noise; the machinery is what is checked.) Screenshots in
 * test-results/ (documents-per-page.png, documents-answer.png).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright';
import { chromiumArgs, chromiumPath } from '../chromium.js';
import { serveStatic, type StaticServer } from './server.js';
import { demoDist, repoRoot } from './global-setup.js';
import { pageColors, screensPdfNode } from '../helpers/screens-pdf-node.js';

const OUT = resolve(repoRoot, 'test-results');
const COLORS = pageColors(12, 5);
let server: StaticServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
let pdfPath: string;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  pdfPath = resolve(OUT, 'screens-12.pdf');
  writeFileSync(pdfPath, await screensPdfNode(COLORS));
  server = await serveStatic(demoDist);
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => typeof window.pixtralDemo === 'object', null, { timeout: 120_000 });
  await page.evaluate(() => window.pixtralDemo.ready);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('demo: Whole document', () => {
  it('per page: the progress list gives the right colour for all 12 pages', async () => {
    await page.setInputFiles('#doc-file', pdfPath);
    await page.fill('#doc-question', 'What color is the box?');
    await page.check('#doc-per-page');
    await page.click('#doc-ask');
    await page.locator('#doc-form[data-state="done"], #doc-form[data-state="failed"]').waitFor({ timeout: 600_000 });
    expect(await page.getAttribute('#doc-form', 'data-state'), (await page.textContent('#doc-status')) ?? '').toBe('done');
    const rows = await page.locator('#doc-pages > li').allTextContents();
    expect(rows).toEqual(COLORS.map((c, i) => `Page ${i + 1} ${c}`));
    expect(await page.textContent('#doc-status')).toMatch(/^12 pages answered in [\d.]+ s; at most \d+ tokens in the KV cache at once\.$/);
    await page.locator('#doc-heading').scrollIntoViewIfNeeded();
    await page.screenshot({ path: resolve(OUT, 'documents-per-page.png'), fullPage: true });
  });

  it('synthesis: found / not found per page, an answer, citations that show the page', async () => {
    // Two pages keep the run short on a software adapter: each map pass writes bounded JSON.
    const two = resolve(OUT, 'screens-2.pdf');
    writeFileSync(two, await screensPdfNode(['red', 'blue']));
    await page.setInputFiles('#doc-file', two);
    await page.fill('#doc-question', 'Which page has a red box?');
    await page.uncheck('#doc-per-page');
    // The chat's generation settings (a closed <details>) also bound the document's answers.
    await page.$eval('#max-tokens', (e) => ((e as HTMLInputElement).value = '16'));
    await page.click('#doc-ask');
    await page.locator('#doc-form[data-state="done"], #doc-form[data-state="failed"]').waitFor({ timeout: 600_000 });
    expect(await page.getAttribute('#doc-form', 'data-state'), (await page.textContent('#doc-status')) ?? '').toBe('done');
    const rows = await page.locator('#doc-pages > li').allTextContents();
    expect(rows.length).toBe(2);
    for (const [i, r] of rows.entries()) expect(r).toMatch(new RegExp(`^Page ${i + 1} (found|not found)`));
    expect((await page.textContent('.doc-answer-text'))?.length).toBeGreaterThan(0);
    const cites = page.locator('#doc-answer .doc-cite');
    const found = rows.filter((r) => / found/.test(r) && !/not found/.test(r)).length;
    expect(await cites.count()).toBeLessThanOrEqual(found);
    if ((await cites.count()) > 0) {
      const n = await cites.first().getAttribute('data-page');
      await cites.first().click();
      await expect.poll(() => page.getAttribute('#doc-preview', 'data-page')).toBe(n);
      expect(await page.isVisible('#doc-thumb')).toBe(true);
      expect(await page.textContent('#doc-thumb-caption')).toBe(`Page ${n} of screens-2.pdf`);
    } else {
      expect(await page.textContent('#doc-answer')).toContain('No page was found to hold the answer.');
    }
    await page.locator('#doc-heading').scrollIntoViewIfNeeded();
    await page.screenshot({ path: resolve(OUT, 'documents-answer.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
