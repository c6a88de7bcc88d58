/**
 * `askDocument` in the browser on the embedded model (pixtral-tiny-screens, q4, in the library's
 * worker) over a generated 12-page PDF of its kind of pages (only page 5's box is red): PDF
 * rendering with pdf.js in its worker, the page budget, per-page answers, grammar-constrained
 * JSON per page, synthesis end to end, the KV-cache peak, reuse on a second question, failed
 * pages reported, abort, and bad options refused with typed errors.
 *
 * The model cannot read text and knows three questions, so only "What color is the box?" per
 * page is checked for right answers; the synthesis map question is not one it knows, and its
 * notes and answer are noise: only the machinery is checked there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { loadPixtral, askDocument, engineFromModel, AbortError, LimitError, RequestError, type PixtralModel, type PageProgress } from '../../src/index.js';
import { MAP_MAX_TOKENS, NOTES_CHARS, QUOTE_CHARS } from '../../src/documents/prompts.js';
import { screensPdf, twelvePages } from '../helpers/screens-pdf.js';

const QUESTION = 'What color is the box?';
const pages = twelvePages(5);
let model: PixtralModel;
let pdf: Uint8Array;

beforeAll(async () => {
  model = await loadPixtral({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 1024, dtype: 'q4' });
  pdf = await screensPdf(pages);
});
afterAll(async () => model?.dispose());

describe('askDocument (browser, embedded model)', () => {
  it('per page: the right colour on every one of 12 pages, one page at a time in the KV cache', async () => {
    const progress: PageProgress[] = [];
    const r = await askDocument(model, new Blob([pdf as BlobPart], { type: 'application/pdf' }), QUESTION, { perPage: true, maxTokens: 4, onPage: (p) => progress.push(p) });
    expect(r.pages.map((p) => p.page)).toEqual(pages.map((_, i) => i + 1));
    expect(r.pages.map((p) => p.answer)).toEqual(pages.map((p) => p.color));
    expect(r.pages.filter((p) => p.answer === 'red').map((p) => p.page)).toEqual([5]);
    expect(progress.map((p) => `${p.index}/${p.total}:${p.found}`)).toEqual(pages.map((p, i) => `${i + 1}/12:${p.color}`));
    // Every page fits the model's 128-px edge: 8 x 8 tokens at most, 72 prompt tokens with breaks.
    for (const p of r.pages) expect(p.stats!.imageTokens).toBeLessThanOrEqual(72);
    const s = r.stats;
    expect(s.calls).toBe(12);
    expect(s.renderedPages).toBe(12);
    expect(s.failedPages).toBe(0);
    // The KV cache held one page at a time: the peak is one call's prompt + answer, while the
    // document's image tokens alone are 12 times that.
    expect(s.peakKvTokens).toBe(Math.max(...r.pages.map((p) => p.stats!.promptTokens + p.stats!.generatedTokens)));
    expect(s.peakKvTokens).toBeLessThanOrEqual(72 + 20 + 4);
    expect(s.imageTokens).toBeGreaterThan(6 * s.peakKvTokens);
    console.log(`[documents] per page: 12 pages, ${s.imageTokens} image tokens, peak KV ${s.peakKvTokens}, ${s.totalMs.toFixed(0)} ms`);
  });

  it('a second question about the same bytes reuses the rendered pages and the preprocessed pixels', async () => {
    // A new object holding the same bytes: found by their hash.
    const r = await askDocument(model, pdf.slice(), QUESTION, { perPage: true, maxTokens: 4, pages: '3-6' });
    expect(r.pages.map((p) => p.answer)).toEqual(pages.slice(2, 6).map((p) => p.color));
    expect(r.stats.reusedPages).toBe(4);
    expect(r.stats.renderedPages).toBe(0);
    expect(r.stats.imagesPreprocessed).toBe(0);
  });

  it('per page with a response_format: every page gives JSON that validates', async () => {
    const schema = { type: 'object', properties: { color: { enum: ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] } }, required: ['color'] };
    const validate = new Ajv().compile(schema);
    const r = await askDocument(model, pdf, QUESTION, { perPage: true, pages: '4-6', maxTokens: 24, response_format: { type: 'json_schema', json_schema: { name: 'box', schema, strict: true } } });
    expect(r.pages.length).toBe(3);
    for (const p of r.pages) {
      expect(p.error).toBeUndefined();
      expect(validate(p.json), p.answer).toBe(true);
      expect(p.json).toEqual(JSON.parse(p.answer));
    }
    // Colours not asserted: in JSON mode the model sees `{"color": "`, which it was never trained on.
  });

  it('synthesis runs end to end: notes per page, a reduce step, citations among the relevant pages', async () => {
    const progress: PageProgress[] = [];
    const r = await askDocument(model, pdf, 'Which page has a red box?', { pages: '5-6', maxTokens: 16, onPage: (p) => progress.push(p) });
    expect(r.pages.map((p) => p.page)).toEqual([5, 6]);
    for (const p of r.pages) {
      expect(p.error).toBeUndefined();
      expect(typeof p.relevant).toBe('boolean');
      expect(p.quote.length).toBeLessThanOrEqual(QUOTE_CHARS);
      expect(p.notes.length).toBeLessThanOrEqual(NOTES_CHARS);
    }
    expect(progress.map((p) => p.relevant)).toEqual(r.pages.map((p) => p.relevant));
    const relevant = new Set(r.pages.filter((p) => p.relevant).map((p) => p.page));
    for (const c of r.citations) expect(relevant.has(c.page)).toBe(true);
    expect(typeof r.answer).toBe('string');
    expect(r.stats.calls).toBe(3);
    // Bounded by one page plus the notes: no map call holds more than one page, its prompt and
    // its bounded JSON; the reduce holds at most one page image plus the notes and the answer.
    const mapPeak = Math.max(...r.pages.map((p) => p.stats!.kvTokens));
    expect(mapPeak).toBeLessThanOrEqual(72 + 120 + MAP_MAX_TOKENS);
    console.log(`[documents] map tokens generated per page: ${r.pages.map((p) => p.stats!.generatedTokens).join(', ')}; ${r.stats.totalMs.toFixed(0)} ms`);
    expect(r.stats.peakKvTokens).toBe(Math.max(mapPeak, r.stats.reduce.kvTokens));
    expect(r.stats.reduce.imageTokens).toBeLessThanOrEqual(72);
    console.log(`[documents] synthesis (noise from this model): relevant ${[...relevant].join(',') || 'none'}; answer ${JSON.stringify(r.answer)}; peak KV ${r.stats.peakKvTokens}`);
  });

  it('takes what createEngine returns: its local model, or its chat.completions.create alone (the remote path)', async () => {
    const engine = engineFromModel(model);
    const local = await askDocument(engine, pdf, QUESTION, { perPage: true, maxTokens: 4, pages: '5-6' });
    expect(local.pages.map((p) => p.answer)).toEqual(['red', pages[5]!.color]);
    // Without `model`, only the OpenAI-shaped call is used, as for a remote engine: counts come from `usage`.
    const viaCompletions = await askDocument({ chat: engine.chat }, pdf, QUESTION, { perPage: true, maxTokens: 4, pages: '5-6' });
    expect(viaCompletions.pages.map((p) => p.answer)).toEqual(['red', pages[5]!.color]);
    expect(viaCompletions.stats.peakKvTokens).toBe(local.stats.peakKvTokens);
  });

  it('a page that cannot be decoded is reported, the others answered', async () => {
    const good = await (await fetch('/shared/models/pixtral-tiny-screens/samples/screen_02.png')).blob();
    const bad = new Blob([new Uint8Array([1, 2, 3, 4])], { type: 'image/png' });
    const list = [good, bad, good];
    const r = await askDocument(model, list, QUESTION, { perPage: true, maxTokens: 4 });
    expect(r.pages.map((p) => p.answer)).toEqual(['green', '', 'green']);
    expect(r.pages[1]!.error).toMatch(/^page 2: /);
    expect(r.stats.failedPages).toBe(1);
    // Encoded page images are decoded once and kept (by the list's identity): a second question decodes nothing.
    const again = await askDocument(model, list, QUESTION, { perPage: true, maxTokens: 4, pages: '1,3' });
    expect(again.pages.map((p) => p.answer)).toEqual(['green', 'green']);
    expect(again.stats.reusedPages).toBe(2);
  });

  it('abort between pages, and bad options, are typed errors', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const err = await askDocument(model, pdf, QUESTION, { perPage: true, maxTokens: 4, signal: ac.signal, onPage: (p) => (seen.push(p.page), ac.abort()) }).catch((e) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(seen).toEqual([1]);
    await expect(askDocument(model, pdf, QUESTION, { pages: '3-40' })).rejects.toThrow(LimitError);
    await expect(askDocument(model, pdf, QUESTION, { pages: '3-40' })).rejects.toThrow(/has 12 pages/);
    await expect(askDocument(model, pdf, QUESTION, { pageTokens: 1 })).rejects.toThrow(LimitError);
    await expect(askDocument(model, pdf, ' ')).rejects.toThrow(RequestError);
    await expect(askDocument({} as never, pdf, QUESTION)).rejects.toThrow(/engine/);
    await expect(askDocument(model, new Uint8Array([37, 80, 68, 70]), QUESTION)).rejects.toThrow(/not a readable PDF/);
  });
});
