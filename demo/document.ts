/**
 * The "Whole document" mode: one PDF, one question about all its pages (`askDocument`). A
 * progress list fills in page by page (found / not found and the quote; per page: the answer),
 * then the answer appears with one button per cited page that shows that page's thumbnail.
 * Everything runs on the loaded model, offline like the rest of the page.
 */
import { askDocument, openBrowserPdf, type PageProgress, type PixtralModel, type SynthesisResult } from '../src/index.js';
import { byId, el } from './dom.js';

const THUMB_EDGE = 240;

export class DocumentPanel {
  private readonly form = byId<HTMLFormElement>('doc-form');
  private readonly file = byId<HTMLInputElement>('doc-file');
  private readonly question = byId<HTMLInputElement>('doc-question');
  private readonly perPage = byId<HTMLInputElement>('doc-per-page');
  private readonly ask = byId<HTMLButtonElement>('doc-ask');
  private readonly stop = byId<HTMLButtonElement>('doc-stop');
  private readonly status = byId<HTMLElement>('doc-status');
  private readonly pages = byId<HTMLOListElement>('doc-pages');
  private readonly answer = byId<HTMLElement>('doc-answer');
  private readonly preview = byId<HTMLElement>('doc-preview');
  private readonly thumb = byId<HTMLCanvasElement>('doc-thumb');
  private readonly caption = byId<HTMLElement>('doc-thumb-caption');
  private model: PixtralModel | null = null;
  private running: AbortController | null = null;

  constructor() {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.run();
    });
    this.stop.addEventListener('click', () => this.running?.abort());
    this.file.addEventListener('change', () => this.sync());
    this.question.addEventListener('input', () => this.sync());
  }

  setModel(m: PixtralModel | null): void {
    this.model = m;
    this.sync();
  }

  private sync(): void {
    this.ask.disabled = !this.model || !this.file.files?.length || !this.question.value.trim() || !!this.running;
    this.stop.disabled = !this.running;
  }

  private row(p: PageProgress): HTMLLIElement {
    const what = p.error ? `could not be read: ${p.error}` : p.relevant === undefined ? (p.found ?? '') : p.relevant ? 'found' : 'not found';
    const li = el('li', { className: p.error ? 'doc-page doc-error' : p.relevant === false ? 'doc-page doc-miss' : 'doc-page doc-hit', attrs: { 'data-page': String(p.page) } }, [
      el('strong', { text: `Page ${p.page}` }),
      el('span', { text: ` ${what}` }),
      p.relevant && p.found ? el('q', { text: p.found }) : null,
    ]);
    return li;
  }

  private async showPage(file: File, page: number): Promise<void> {
    const pdf = await openBrowserPdf(new Uint8Array(await file.arrayBuffer()), file.name);
    try {
      const size = await pdf.pageSize(page);
      const canvas = (await pdf.draw(page, THUMB_EDGE / Math.max(size.width, size.height))) as HTMLCanvasElement;
      this.thumb.width = canvas.width;
      this.thumb.height = canvas.height;
      this.thumb.getContext('2d')!.drawImage(canvas, 0, 0);
      this.caption.textContent = `Page ${page} of ${file.name}`;
      this.preview.hidden = false;
      this.preview.dataset.page = String(page);
    } finally {
      await pdf.close();
    }
  }

  private renderAnswer(file: File, r: SynthesisResult): void {
    const cites = r.citations.map((c) => {
      const b = el('button', { className: 'doc-cite', text: `page ${c.page}`, attrs: { type: 'button', 'data-page': String(c.page), title: c.quote || `show page ${c.page}` } });
      b.addEventListener('click', () => void this.showPage(file, c.page));
      return b;
    });
    this.answer.replaceChildren(
      el('p', { className: 'doc-answer-text', text: r.answer.trim() || '(no answer)' }),
      cites.length ? el('p', { className: 'doc-cites', text: 'Cited: ' }, cites) : el('p', { className: 'muted', text: 'No page was found to hold the answer.' }),
    );
  }

  private async run(): Promise<void> {
    const model = this.model;
    const file = this.file.files?.[0];
    const question = this.question.value.trim();
    if (!model || !file || !question) return;
    this.running = new AbortController();
    this.sync();
    this.pages.replaceChildren();
    this.answer.replaceChildren();
    this.preview.hidden = true;
    this.form.dataset.state = 'running';
    this.status.textContent = `Reading ${file.name}…`;
    const onPage = (p: PageProgress) => {
      this.pages.append(this.row(p));
      this.status.textContent = `Page ${p.index} of ${p.total} read (${(p.elapsedMs / 1000).toFixed(1)} s)`;
    };
    try {
      const common = { onPage, signal: this.running.signal, name: file.name, maxTokens: Number(byId<HTMLInputElement>('max-tokens').value) || 256 };
      if (this.perPage.checked) {
        const r = await askDocument(model, file, question, { ...common, perPage: true });
        this.status.textContent = `${r.pages.length} pages answered in ${(r.stats.totalMs / 1000).toFixed(1)} s; at most ${r.stats.peakKvTokens} tokens in the KV cache at once.`;
      } else {
        const r = await askDocument(model, file, question, common);
        this.renderAnswer(file, r);
        this.status.textContent = `${r.pages.length} pages read and answered in ${(r.stats.totalMs / 1000).toFixed(1)} s; at most ${r.stats.peakKvTokens} tokens in the KV cache at once${r.stats.reusedPages ? `; ${r.stats.reusedPages} pages reused from the last question` : ''}.`;
      }
      this.form.dataset.state = 'done';
    } catch (e) {
      this.status.textContent = `Stopped: ${e instanceof Error ? e.message : String(e)}`;
      this.form.dataset.state = 'failed';
    } finally {
      this.running = null;
      this.sync();
    }
  }
}
