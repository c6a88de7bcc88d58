/**
 * `askDocument`: a question about a whole document, one page at a time, so memory and time stay
 * bounded by one page plus the notes whatever the page count.
 *
 * Per page (`perPage`): each page asked alone (image, then the question), at the longest edge
 * that fits `pageTokens`; with `response_format` each answer is grammar-constrained JSON.
 * Synthesis (default): map (each page: relevant?, quote, notes, as bounded JSON), then reduce
 * (the relevant pages' notes as text, plus the most relevant page's image when the context
 * allows, cite pages). A page that cannot be rendered or asked is reported with its `error`; an
 * abort stops everything with an `AbortError`.
 */
import { AbortError, FormatError, PixtralError, RequestError, abortError, throwIfAborted } from '../errors.js';
import type { ImageInput } from '../image/decode.js';
import { DEFAULT_PAGE_TOKENS, longestEdgeForTokens } from './budget.js';
import { askerFor, type Asker, type DocumentEngine, type Part } from './engine.js';
import { DocumentPages, selectPages } from './pages.js';
import type { PdfOpener } from './pdf-source.js';
import { MAP_FORMAT, MAP_MAX_TOKENS, mapPrompt, noteLine, reducePrompt } from './prompts.js';
import type { AskDocumentOptions, PageProgress, CallStats, DocumentInput, DocumentStats, PageAnswer, PageNotes, PerPageResult, SynthesisResult } from './types.js';

/** A text's UTF-8 length bounds its token count from above: every token is at least one byte. */
const utf8Length = (s: string) => new TextEncoder().encode(s).length;
/** Special tokens around one user turn ([INST], [/INST], BOS and spares). */
const TURN_OVERHEAD = 16;

interface Run {
  asker: Asker;
  pages: DocumentPages;
  selection: number[];
  pageTokens: number;
  maxTokens: number;
  opts: AskDocumentOptions;
  stats: DocumentStats;
  t0: number;
}

function emptyStats(n: number): DocumentStats {
  return { pages: n, failedPages: 0, calls: 0, promptTokens: 0, imageTokens: 0, generatedTokens: 0, peakKvTokens: 0, reusedPages: 0, renderedPages: 0, imagesPreprocessed: 0, longestEdge: 0, renderMs: 0, totalMs: 0 };
}

function count(stats: DocumentStats, c: CallStats): void {
  stats.calls++;
  stats.promptTokens += c.promptTokens;
  stats.imageTokens += c.imageTokens;
  stats.generatedTokens += c.generatedTokens;
  stats.imagesPreprocessed += c.imagesPreprocessed;
  stats.peakKvTokens = Math.max(stats.peakKvTokens, c.kvTokens);
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Page `n` at the longest edge that fits the budget. */
async function pageImage(r: Run, n: number, countReuse = true): Promise<{ image: ImageInput & { width: number; height: number }; longestEdge: number }> {
  const image = await r.pages.page(n, r.asker.imageSize, countReuse);
  const { width, height } = image;
  const { longestEdge } = longestEdgeForTokens(height, width, r.pageTokens, r.asker.imageSize, r.asker.tokenPx);
  r.stats.longestEdge = Math.max(r.stats.longestEdge, longestEdge);
  return { image, longestEdge };
}

/** Runs `fn` per page; failures other than an abort become that page's `error`. */
async function eachPage<T extends { page: number; error?: string }>(r: Run, fn: (page: number) => Promise<T>, onError: (page: number, error: string) => T, found: (row: T) => Pick<PageProgress, 'relevant' | 'found'>): Promise<T[]> {
  const rows: T[] = [];
  for (let i = 0; i < r.selection.length; i++) {
    throwIfAborted(r.opts.signal);
    const page = r.selection[i]!;
    let row: T;
    try {
      row = await fn(page);
    } catch (e) {
      if (e instanceof AbortError || r.opts.signal?.aborted) throw r.opts.signal?.aborted ? abortError(r.opts.signal) : e;
      // A lost device or a disposed model fails every later page too: stop, do not report 20 times.
      if (e instanceof PixtralError && (e.code === 'DEVICE_LOST' || e.code === 'DISPOSED')) throw e;
      row = onError(page, `page ${page}: ${message(e)}`);
      r.stats.failedPages++;
    }
    rows.push(row);
    r.opts.onPage?.({ page, index: i + 1, total: r.selection.length, ...(row.error ? { error: row.error } : found(row)), elapsedMs: performance.now() - r.t0 });
  }
  return rows;
}

async function perPage(r: Run, question: string): Promise<PerPageResult> {
  const format = r.opts.response_format;
  const json = format && format.type !== 'text';
  const rows = await eachPage<PageAnswer>(
    r,
    async (page) => {
      const { image, longestEdge } = await pageImage(r, page);
      const res = await r.asker.ask({ parts: [{ type: 'image', image }, { type: 'text', text: question }], maxTokens: r.maxTokens, longestEdge, responseFormat: format, signal: r.opts.signal });
      count(r.stats, res.stats);
      const row: PageAnswer = { page, answer: res.text, stats: res.stats };
      if (json) {
        try {
          row.json = JSON.parse(res.text);
        } catch {
          row.error = `page ${page}: the answer is not complete JSON (finish: ${res.stats.finishReason}; raise maxTokens)`;
          r.stats.failedPages++;
        }
      }
      return row;
    },
    (page, error) => ({ page, answer: '', error }),
    (row) => ({ found: row.answer }),
  );
  return { pages: rows, stats: r.stats };
}

async function synthesis(r: Run, question: string): Promise<SynthesisResult> {
  const notes = await eachPage<PageNotes>(
    r,
    async (page) => {
      const { image, longestEdge } = await pageImage(r, page);
      const res = await r.asker.ask({ parts: [{ type: 'image', image }, { type: 'text', text: mapPrompt(question) }], maxTokens: MAP_MAX_TOKENS, longestEdge, responseFormat: MAP_FORMAT, signal: r.opts.signal });
      count(r.stats, res.stats);
      let v: { relevant?: unknown; quote?: unknown; notes?: unknown };
      try {
        v = JSON.parse(res.text) as typeof v;
      } catch {
        throw new FormatError(`the page's notes are not complete JSON (finish: ${res.stats.finishReason})`);
      }
      return { page, relevant: v.relevant === true, quote: String(v.quote ?? ''), notes: String(v.notes ?? ''), stats: res.stats };
    },
    (page, error) => ({ page, relevant: false, quote: '', notes: '', error }),
    (row) => ({ relevant: row.relevant, found: row.quote }),
  );
  throwIfAborted(r.opts.signal);

  // Reduce: the relevant pages' notes, most relevant (longest quote) first, as many as the context
  // takes; then the most relevant page's image again if it still fits.
  const relevant = notes.filter((p) => p.relevant && !p.error).sort((a, b) => b.quote.length - a.quote.length || a.page - b.page);
  const room = r.asker.maxContext - r.maxTokens - TURN_OVERHEAD - utf8Length(reducePrompt(question, [], [])) - 64;
  const kept: PageNotes[] = [];
  let used = 0;
  for (const p of relevant) {
    const len = utf8Length(noteLine(p)) + 1;
    if (used + len > room) break;
    kept.push(p);
    used += len;
  }
  const parts: Part[] = [];
  const shown: number[] = [];
  let longestEdge = r.asker.imageSize;
  const top = kept[0];
  if (top) {
    const page = await pageImage(r, top.page, false);
    const { width, height } = page.image;
    if (used + longestEdgeForTokens(height, width, r.pageTokens, r.asker.imageSize, r.asker.tokenPx).tokens <= room) {
      parts.push({ type: 'image', image: page.image });
      shown.push(top.page);
      longestEdge = page.longestEdge;
    }
  }
  const ordered = [...kept].sort((a, b) => a.page - b.page);
  parts.push({ type: 'text', text: reducePrompt(question, ordered.map(noteLine), shown) });
  const res = await r.asker.ask({ parts, maxTokens: r.maxTokens, longestEdge, signal: r.opts.signal });
  count(r.stats, res.stats);
  // Citations: the kept pages the answer names ("page 3", "pages 3"), or all of them if it names none.
  const named = new Set([...res.text.matchAll(/\bpages?\s+(\d+)/gi)].map((m) => Number(m[1])));
  const cited = ordered.filter((p) => named.has(p.page));
  const citations = (cited.length ? cited : ordered).map((p) => ({ page: p.page, quote: p.quote }));
  // The same stats object: the totals filled in when the run ends show in the result.
  return { answer: res.text, citations, pages: notes, reducePages: shown, stats: Object.assign(r.stats, { reduce: res.stats }) };
}

/** `askDocument` with a given PDF opener (the browser's or Node's). */
export async function askDocumentWith(
  open: PdfOpener,
  engine: DocumentEngine,
  document: DocumentInput,
  question: string,
  opts: AskDocumentOptions = {},
): Promise<SynthesisResult | PerPageResult> {
  const t0 = performance.now();
  if (typeof question !== 'string' || !question.trim()) throw new RequestError('question', 'must be a non-empty string');
  const asker = askerFor(engine);
  const name = opts.name ?? 'document';
  const pageTokens = opts.pageTokens ?? DEFAULT_PAGE_TOKENS;
  const maxTokens = opts.maxTokens ?? 256;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RequestError('maxTokens', `must be a positive integer (got ${maxTokens})`);
  if (opts.response_format && !opts.perPage) throw new RequestError('response_format', 'applies per page only (perPage: true); synthesis answers in text');
  throwIfAborted(opts.signal);
  const pages = await DocumentPages.of(document, open, name);
  const selection = selectPages(opts.pages, pages.pageCount, name);
  const r: Run = { asker, pages, selection, pageTokens, maxTokens, opts, stats: emptyStats(selection.length), t0 };
  longestEdgeForTokens(asker.imageSize, asker.imageSize, pageTokens, asker.imageSize, asker.tokenPx); // a bad budget fails before any page
  try {
    const out = opts.perPage ? await perPage(r, question) : await synthesis(r, question);
    return out;
  } finally {
    r.stats.reusedPages = pages.reused;
    r.stats.renderedPages = pages.rendered;
    r.stats.renderMs = pages.renderMs;
    r.stats.totalMs = performance.now() - t0;
    await pages.close();
  }
}
