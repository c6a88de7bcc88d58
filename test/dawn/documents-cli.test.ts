/**
 * `askDocument` from the Node entry, in-process (per page on the embedded model, reuse on a
 * second question), and `pixtral-webgpu ask-doc` as a real child process (the source checkout's launcher) on the
 * embedded q4 model in Node on Dawn (lavapipe when present), over a generated 12-page PDF of
 * the model's kind of pages (only page 5's box is red): `--per-page` JSON
 * lines with the right colour on every page and progress on stderr, synthesis `--json` end to
 * end with its KV-cache peak, and usage errors (exit 2) naming the flag.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pageColors, screensPdfNode } from '../helpers/screens-pdf-node.js';
import { parseAskDocArgs } from '../../cli/ask-doc.js';
import { askDocument, loadPixtral } from '../../src/node/index.js';

const root = resolve(import.meta.dirname, '../..');
const MODEL = resolve(root, '.scratch/models/pixtral-tiny-screens-q4');
const LVP = '/usr/share/vulkan/icd.d/lvp_icd.json';
const COLORS = pageColors(12, 5);
const SLOW = 600_000; // a child process loads the model and runs every page on a software adapter
let pdf: string;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, ...(existsSync(LVP) && !process.env.VK_ICD_FILENAMES ? { VK_ICD_FILENAMES: LVP } : {}) };
  return new Promise((res) => {
    execFile(process.execPath, [resolve(root, 'bin/pixtral-webgpu.js'), 'ask-doc', ...args], { env, cwd: root, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ask-doc-'));
  pdf = join(dir, 'screens.pdf');
  await writeFile(pdf, await screensPdfNode(COLORS));
});

describe('ask-doc arguments', () => {
  it('parses every flag and refuses bad ones naming the flag', () => {
    expect(parseAskDocArgs(['m', 'a.pdf', 'What', 'is', 'it?', '--pages', '1-20', '--page-tokens', '1500', '--per-page', '--max-tokens', '8', '--quiet'])).toMatchObject({
      model: 'm', file: 'a.pdf', question: 'What is it?', pages: '1-20', pageTokens: 1500, perPage: true, maxTokens: 8, quiet: true, json: false,
    });
    expect(parseAskDocArgs(['--help'])).toBeNull();
    expect(() => parseAskDocArgs(['m', 'a.pdf'])).toThrow(/needs <model>, <file.pdf> and a question/);
    expect(() => parseAskDocArgs(['m', 'a.pdf', 'q', '--page-tokens', 'x'])).toThrow(/--page-tokens must be a positive integer/);
    expect(() => parseAskDocArgs(['m', 'a.pdf', 'q', '--schema', 's.json'])).toThrow(/--schema applies per page only/);
    expect(() => parseAskDocArgs(['m', 'a.pdf', 'q', '--json', '--per-page'])).toThrow(/--json and --per-page/);
  });
});

describe.skipIf(!existsSync(MODEL))('askDocument in Node (in-process, Dawn)', () => {
  it('per page from the PDF bytes: the right colours; a second question reuses the rendered pages', async () => {
    const model = await loadPixtral({ url: MODEL, maxContext: 256 });
    try {
      const bytes = new Uint8Array(await readFile(pdf));
      const r = await askDocument(model, bytes, 'What color is the box?', { perPage: true, maxTokens: 4, pages: '4-6' });
      expect(r.pages.map((p) => p.answer)).toEqual(COLORS.slice(3, 6));
      expect(r.stats.renderedPages).toBe(3);
      const again = await askDocument(model, bytes, 'What color is the box?', { perPage: true, maxTokens: 4, pages: '4-6' });
      expect(again.pages.map((p) => p.answer)).toEqual(COLORS.slice(3, 6));
      expect(again.stats).toMatchObject({ reusedPages: 3, renderedPages: 0, imagesPreprocessed: 0 });
    } finally {
      await model.dispose();
    }
  }, SLOW);
});

describe.skipIf(!existsSync(MODEL))('ask-doc on the embedded model (Node, Dawn)', () => {
  it('--per-page: one JSON line per page with the right colour on all 12, progress on stderr', async () => {
    const r = await cli([MODEL, pdf, 'What color is the box?', '--per-page', '--max-tokens', '4', '--context', '256']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { page: number; answer: string });
    expect(lines).toEqual(COLORS.map((color, i) => ({ page: i + 1, answer: color })));
    expect(r.stderr.match(/^page \d+ \(\d+\/12\) /gm)?.length).toBe(12);
  }, SLOW);

  it('synthesis --json runs end to end: every page noted, an answer, the KV peak within one page plus the notes', async () => {
    const r = await cli([MODEL, pdf, 'Which page has a red box?', '--json', '--pages', '5', '--max-tokens', '16', '--context', '1024', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { answer: string; citations: { page: number }[]; pages: { page: number; relevant: boolean; error?: string }[]; stats: { calls: number; peakKvTokens: number; imageTokens: number } };
    expect(out.pages.map((p) => [p.page, typeof p.relevant, p.error])).toEqual([[5, 'boolean', undefined]]);
    expect(typeof out.answer).toBe('string');
    expect(out.stats.calls).toBe(2);
    expect(out.stats.peakKvTokens).toBeLessThanOrEqual(1024);
    expect(r.stderr.replace(/^Warning: .*\n/gm, '')).toBe('');
  }, SLOW);

  it('a missing file is an error before the model loads; a page range past the end names the page count', async () => {
    const missing = await cli([MODEL, '/nonexistent.pdf', 'q', '--quiet']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ENOENT/);
    const past = await cli([MODEL, pdf, 'q', '--pages', '3-40', '--quiet', '--context', '256']);
    expect(past.code).toBe(1);
    expect(past.stderr).toMatch(/has 12 pages/);
  }, SLOW);
});
