/**
 * End-to-end tests of the demo's "Extract as JSON" mode and its remote-server setting, on the
 * BUILT demo (dist/demo, static server on 127.0.0.1) in Debian's headless Chromium (SwiftShader
 * WebGPU), driven by Playwright. One page, in order (few interactions: SwiftShader on 2 shared
 * cores is slow):
 * 1. the embedded model's colour schema on a sample screenshot gives JSON that a real JSON Schema
 *    validator (ajv) accepts, shown formatted as text, with the reference colour; Download gives
 *    the same JSON as a .json file;
 * 2. a schema that is not JSON, then one with an unsupported keyword (`FormatError`), each show a
 *    clear message and no JSON;
 * 3. the remote setting pointed at a real `pixtral-webgpu serve` child process (Dawn in Node,
 *    `--cors` for the demo's origin): the chat answer and the extraction come from the server
 *    (its request log grows) and agree with the local ones.
 * Full-page screenshots go to test-results/extract-*.png.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright';
import { chromiumArgs, chromiumPath } from '../chromium.js';
import { SAMPLES, samples, startServe, stopServe, type ServeProcess } from '../dawn/serve-process.js';
import { serveStatic, type StaticServer } from './server.js';
import { demoDist, repoRoot } from './global-setup.js';

const OUT = resolve(repoRoot, 'test-results');
// A sample whose colour the embedded model gets right in JSON mode too (6 of 12 do: README,
// "Structured output"); screen_02 is right only with the spaced layout it no longer uses.
const IMAGE = 'screen_03.png';
const COLOUR = samples().find((s) => s.image === IMAGE && s.question_type === 'color')!;
const COLOUR_SCHEMA = { type: 'object', properties: { color: { enum: ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] } }, required: ['color'] };

let site: StaticServer;
let serve: ServeProcess;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** The JSON the local model extracted (test 1), compared with the remote one (test 3). */
let localJson = '';

/** Clicks Extract and waits for the panel to show JSON or a message. */
async function extractUi(p: Page): Promise<{ json: string; status: string }> {
  await p.click('#extract-run');
  await p.waitForFunction(() => {
    const s = document.getElementById('extract-status')?.textContent ?? '';
    return !(document.getElementById('extract-run') as HTMLButtonElement).disabled && !s.startsWith('Extracting');
  }, null, { timeout: 600_000 });
  return { json: (await p.textContent('#extract-output')) ?? '', status: (await p.textContent('#extract-status')) ?? '' };
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  site = await serveStatic(demoDist);
  const origin = new URL(site.url).origin;
  // Dawn over lavapipe, as the dawn project runs it (a machine's own Vulkan driver would do too).
  serve = await startServe(['--cors', origin, '--max-context', '512'], { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/share/vulkan/icd.d/lvp_icd.json' });
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(site.url);
  await page.waitForFunction(() => typeof window.pixtralDemo === 'object', null, { timeout: 120_000 });
  await page.evaluate(() => window.pixtralDemo.ready);
  const why = `${await page.textContent('#model-status')} ${await page.textContent('#model-messages')} ${pageErrors.join('; ')}`;
  expect(await page.evaluate(() => window.pixtralDemo.model()?.info.name ?? null), why).toBe('pixtral-tiny-screens');
  expect(await page.textContent('#model-status'), why).toMatch(/^Loaded /);
});

afterAll(async () => {
  await browser?.close();
  await site?.close();
  await stopServe(serve);
});

describe('demo: Extract as JSON', () => {
  it('the colour schema on a sample screenshot gives valid JSON, shown as text and downloadable', async () => {
    await page.setInputFiles('#image-input', resolve(SAMPLES, IMAGE));
    await expect.poll(() => page.locator('#image-list > li .tokens').first().textContent()).toMatch(/image tokens/);
    expect(await page.inputValue('#extract-preset')).toBe('box_color');
    expect(JSON.parse(await page.inputValue('#extract-schema'))).toEqual(COLOUR_SCHEMA);
    expect(await page.inputValue('#extract-question')).toBe(COLOUR.question);
    const { json, status } = await extractUi(page);
    expect(status, status).toMatch(/^Done: 1 image, \d+ tokens generated\.$/);
    const value: unknown = JSON.parse(json);
    const validate = new Ajv({ strict: true }).compile(COLOUR_SCHEMA);
    expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
    expect(value).toEqual({ color: COLOUR.reference_answer });
    expect(json).toBe(JSON.stringify(value, null, 2)); // formatted
    // Text only: the <pre> holds one text node, no elements.
    expect(await page.locator('#extract-output *').count()).toBe(0);
    localJson = json;

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#extract-download')]);
    expect(download.suggestedFilename()).toBe('box_color.json');
    const saved = resolve(OUT, 'extract-download.json');
    await download.saveAs(saved);
    expect(JSON.parse(readFileSync(saved, 'utf8'))).toEqual(value);
    await page.screenshot({ path: resolve(OUT, 'extract-json.png'), fullPage: true });
  });

  it('a schema that is not JSON, or uses an unsupported keyword, shows a clear message', async () => {
    await page.fill('#extract-schema', '{"type": "object", properties: {}}');
    const notJson = await extractUi(page);
    expect(notJson.status).toMatch(/^The schema is not valid JSON: /);
    expect(notJson.json).toBe('');
    expect(await page.isDisabled('#extract-download')).toBe(true);
    expect(await page.inputValue('#extract-preset')).toBe('custom');

    await page.fill('#extract-schema', JSON.stringify({ type: 'object', properties: { total: { type: 'number', multipleOf: 0.01 } } }));
    const unsupported = await extractUi(page);
    expect(unsupported.status).toContain('The schema cannot be used (FormatError)');
    expect(unsupported.status).toContain('#/properties/total');
    expect(unsupported.status).toContain('"multipleOf" is not supported');
    expect(unsupported.json).toBe('');
    expect(await page.getAttribute('#extract-status', 'role')).toBe('alert');
    await page.screenshot({ path: resolve(OUT, 'extract-invalid-schema.png'), fullPage: true });
  });

  it('with the remote setting, chat and extraction go to a real pixtral-webgpu serve', async () => {
    await page.fill('#remote-base-url', serve.baseURL);
    await page.fill('#remote-model', 'pixtral-tiny-screens');
    await page.click('#remote-apply');
    await expect.poll(() => page.textContent('#remote-status')).toBe(`Chat and extraction go to ${serve.baseURL} (model pixtral-tiny-screens).`);
    const served = () => serve.stderr().split('\n').filter((l) => l.includes('POST /v1/chat/completions 200')).length;
    expect(served()).toBe(0);

    await page.fill('#question', COLOUR.question);
    await page.click('#ask');
    const turn = page.locator('#conversation > li').last();
    await turn.and(page.locator('[data-done]')).waitFor({ timeout: 300_000 });
    const stats = (await turn.locator('.stats').textContent()) ?? '';
    expect(await turn.getAttribute('data-done'), stats).toBe('ok');
    expect(await turn.locator('.answer').textContent()).toBe(COLOUR.reference_answer);
    expect(stats).toContain(`remote server (${serve.baseURL})`);
    expect(served()).toBe(1);

    await page.selectOption('#extract-preset', 'box_color');
    const remote = await extractUi(page);
    expect(remote.status, remote.status).toMatch(/^Done: 1 image/);
    expect(remote.json).toBe(localJson);
    expect(served()).toBe(2);
    await page.screenshot({ path: resolve(OUT, 'extract-remote.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
