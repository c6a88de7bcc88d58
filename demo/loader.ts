/**
 * Model picker and loader: the embedded demo model (shipped with the page under models/) or a
 * converted model at a URL the user enters (e.g. Pixtral-12B converted with
 * `npx pixtral-webgpu convert` on any static host with CORS). Before loading, the manifest is
 * read to estimate GPU memory for the chosen context (capabilities.ts). Loading shows a progress
 * bar with bytes, percent, rate and time left; Cancel aborts it (AbortController), and loading
 * again resumes: the library fetches only the shards missing from IndexedDB. Offline, the library
 * falls back to the cached manifest. A `?model=<url>` link preselects that URL (https:, or http:
 * on localhost: `model-url.ts`) and says what Load would download, from where; it never starts
 * the download itself. A llama.cpp GGUF pair (model + mmproj) is picked as two URLs or two files
 * from disk (read in place: `gguf-picker.ts`); its headers' facts are shown before any weight
 * byte is read, and Load refuses a pair that does not fit the adapter.
 */
import { AbortError, loadPixtral, NetworkError, PixtralError, QuotaError, type LoadProgress, type PixtralModel } from '../src/index.js';
import { memoryMessages, modelFacts, type Capabilities, type Message } from './capabilities.js';
import { checkModelUrl } from './model-url.js';
import { GgufPicker } from './gguf-picker.js';
import { formatBytes, formatDuration, formatPercent, formatRate } from './format.js';
import { byId, renderMessages } from './dom.js';

/** The models shipped with the page, relative to it. */
export const EMBEDDED_MODELS = {
  q4: { url: './models/pixtral-tiny-screens-q4/', label: 'pixtral-tiny-screens, q4' },
  f32: { url: './models/pixtral-tiny-screens-f32/', label: 'pixtral-tiny-screens, f32' },
} as const;

/** The embedded model loaded by default (see README: it reproduces the reference answers). */
export const DEFAULT_EMBEDDED: keyof typeof EMBEDDED_MODELS = 'q4';

const PHASES: Record<LoadProgress['phase'], string> = {
  manifest: 'Reading the manifest',
  download: 'Downloading',
  verify: 'Verifying',
  cached: 'Found in the browser cache',
  upload: 'Uploading to the GPU',
  compile: 'Compiling GPU kernels',
  done: 'Done',
};

export interface LoaderEvents {
  /** Called before a new load starts: the current model is about to be replaced. */
  beforeLoad(): Promise<void>;
  loaded(model: PixtralModel, url: string): void;
  /** The cache changed (a download happened). */
  cacheChanged(): void;
}

export class ModelLoader {
  private readonly form = byId<HTMLFormElement>('model-form');
  private readonly urlInput = byId<HTMLInputElement>('model-url');
  private readonly context = byId<HTMLSelectElement>('model-context');
  private readonly loadButton = byId<HTMLButtonElement>('model-load');
  private readonly cancelButton = byId<HTMLButtonElement>('model-cancel');
  private readonly bar = byId<HTMLProgressElement>('model-progress');
  private readonly status = byId<HTMLElement>('model-status');
  private readonly messages = byId<HTMLElement>('model-messages');
  private readonly urlFields = byId<HTMLElement>('model-url-fields');
  private readonly gguf: GgufPicker;
  private controller: AbortController | null = null;

  constructor(
    private readonly caps: Capabilities,
    private readonly events: LoaderEvents,
  ) {
    this.gguf = new GgufPicker(caps.adapter, () => Number(this.context.value));
    const query = new URLSearchParams(location.search);
    const fromQuery = query.get('model');
    const mmprojQuery = query.get('mmproj');
    if (fromQuery !== null && mmprojQuery !== null) {
      // A GGUF pair link: both files preselected and their headers' facts shown; Load downloads.
      const text = checkModelUrl(fromQuery, location.href, { file: true });
      const mmproj = checkModelUrl(mmprojQuery, location.href, { file: true });
      if (!text.ok) this.setStatus(`The model link was ignored: ${text.reason}.`);
      else if (!mmproj.ok) this.setStatus(`The model link was ignored: ${mmproj.reason}.`);
      else {
        this.gguf.setUrls(text.url, mmproj.url);
        this.radio('gguf').checked = true;
        this.setStatus(`GGUF pair from the link: ${text.url} + ${mmproj.url} (on ${text.host}). Press Load to download it.`);
        void this.gguf.readFacts();
      }
    } else if (fromQuery !== null) {
      const check = checkModelUrl(fromQuery, location.href);
      if (check.ok) {
        this.urlInput.value = check.url;
        this.radio('url').checked = true;
        void this.describeQueryModel(check.url, check.host);
      } else {
        this.setStatus(`The model link was ignored: ${check.reason}.`);
      }
    }
    this.syncUrlField();
    this.form.addEventListener('change', () => {
      this.syncUrlField();
      // A new file, URL or context length changes the facts (the fit depends on the context).
      if (this.choice() === 'gguf' && !this.controller) void this.gguf.readFacts();
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.load();
    });
    this.cancelButton.addEventListener('click', () => this.controller?.abort());
    if (!caps.webgpu || !caps.adapter) this.loadButton.disabled = true;
  }

  private radio(value: string): HTMLInputElement {
    return this.form.querySelector<HTMLInputElement>(`input[name="model-choice"][value="${value}"]`)!;
  }

  private choice(): string {
    return this.form.querySelector<HTMLInputElement>('input[name="model-choice"]:checked')?.value ?? DEFAULT_EMBEDDED;
  }

  private syncUrlField(): void {
    const custom = this.choice() === 'url';
    this.urlInput.disabled = !custom;
    this.urlInput.required = custom;
    this.urlFields.hidden = this.choice() === 'gguf';
    this.gguf.fields.hidden = this.choice() !== 'gguf';
  }

  /** The base URL of the chosen model, absolute (for a GGUF pair: its text file's URL or names). */
  selectedUrl(): string {
    const c = this.choice();
    if (c === 'gguf') return this.gguf.pair()?.label ?? '';
    if (c === 'url') return new URL(this.urlInput.value.trim(), location.href).href;
    const m = EMBEDDED_MODELS[c as keyof typeof EMBEDDED_MODELS] ?? EMBEDDED_MODELS[DEFAULT_EMBEDDED];
    return new URL(m.url, location.href).href;
  }

  get loading(): boolean {
    return this.controller !== null;
  }

  /** Loads the chosen model; resolves when it is ready or the load failed (reported in the page). */
  async load(): Promise<PixtralModel | null> {
    if (this.controller) return null;
    if (this.choice() === 'gguf') return this.loadGguf();
    if (this.choice() === 'url' && !this.urlInput.value.trim()) {
      this.urlInput.focus();
      this.setStatus('Enter the URL of a converted model folder (the one holding manifest.json).');
      return null;
    }
    const url = this.selectedUrl();
    const maxContext = Number(this.context.value);
    const controller = new AbortController();
    this.controller = controller;
    this.loadButton.disabled = true;
    this.cancelButton.disabled = false;
    this.bar.hidden = false;
    this.bar.removeAttribute('value');
    renderMessages(this.messages, []);
    try {
      const pre = await this.preflight(url, maxContext, controller.signal);
      renderMessages(this.messages, pre);
      if (pre.some((m) => m.level === 'error')) {
        this.setStatus('Not loaded: see the message below.');
        return null;
      }
      await this.events.beforeLoad();
      this.setStatus('Starting…');
      const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
      let downloaded = false;
      let finished = false;
      const model = await loadPixtral({
        url,
        maxContext,
        signal: controller.signal,
        offline,
        onProgress: (p) => {
          // Progress travels on its own channel from the worker: a last event can arrive after
          // the load resolved, and must not overwrite the "Loaded ..." line.
          if (finished) return;
          if (p.phase === 'download') downloaded = true;
          this.progress(p);
        },
      }).finally(() => (finished = true));
      this.bar.hidden = true; // done: the status line says what was loaded
      const i = model.info;
      this.setStatus(
        `Loaded ${i.name} (${i.dtype}, ${formatBytes(i.weightBytes)} on the GPU, context ${i.maxContext} tokens)` +
          `${i.fromCache ? ', from the browser cache' : ''}${offline ? ', offline' : ''}.`,
      );
      if (downloaded) this.events.cacheChanged();
      this.events.loaded(model, url);
      return model;
    } catch (e) {
      this.events.cacheChanged();
      this.setStatus(describeLoadError(e));
      return null;
    } finally {
      this.controller = null;
      this.loadButton.disabled = !this.caps.webgpu || !this.caps.adapter;
      this.cancelButton.disabled = true;
    }
  }

  /**
   * Loads the chosen GGUF pair: headers first (their facts shown, a pair that does not fit
   * refused), then the weights by Range requests or from the files in place. Not cached: a GGUF
   * pair is read again at each load.
   */
  private async loadGguf(): Promise<PixtralModel | null> {
    const pair = this.gguf.pair();
    if (!pair) {
      this.setStatus('Choose the model GGUF and its mmproj: two URLs, or two files from this computer.');
      return null;
    }
    const controller = new AbortController();
    this.controller = controller;
    this.loadButton.disabled = true;
    this.cancelButton.disabled = false;
    renderMessages(this.messages, []);
    try {
      this.setStatus('Reading the GGUF headers…');
      const facts = await this.gguf.readFacts(controller.signal);
      if (!facts || !facts.fits) {
        this.setStatus('Not loaded: see the GGUF facts above.');
        return null;
      }
      await this.events.beforeLoad();
      this.setStatus('Starting…');
      this.bar.hidden = false;
      this.bar.removeAttribute('value');
      let finished = false;
      const model = await loadPixtral({
        url: pair.url,
        mmproj: pair.mmproj,
        maxContext: Number(this.context.value),
        signal: controller.signal,
        onProgress: (p) => {
          if (!finished) this.progress(p);
        },
      }).finally(() => (finished = true));
      this.bar.hidden = true;
      const i = model.info;
      this.setStatus(`Loaded ${i.name} (GGUF pair${typeof pair.url === 'string' ? '' : ' from files'}, ${formatBytes(i.weightBytes)} on the GPU, context ${i.maxContext} tokens).`);
      this.events.loaded(model, pair.label);
      return model;
    } catch (e) {
      this.setStatus(describeLoadError(e));
      return null;
    } finally {
      this.bar.hidden = true;
      this.controller = null;
      this.loadButton.disabled = !this.caps.webgpu || !this.caps.adapter;
      this.cancelButton.disabled = true;
    }
  }

  /** What Load would fetch for a `?model=` link: the manifest's name and size, and the host. */
  private async describeQueryModel(url: string, host: string): Promise<void> {
    this.setStatus(`Model from the link: ${url} (on ${host}). Press Load to download it.`);
    try {
      const r = await fetch(new URL('manifest.json', url), { cache: 'no-cache' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const m = (await r.json()) as { name?: unknown; dtype?: unknown; totalBytes?: unknown };
      const size = typeof m.totalBytes === 'number' ? formatBytes(m.totalBytes) : 'an unknown amount';
      this.setStatus(`Model from the link: ${String(m.name ?? 'unnamed')} (${String(m.dtype ?? '?')}), ${size} to download from ${host}. Press Load to download it.`);
    } catch (e) {
      this.setStatus(`Model from the link: ${url} (on ${host}); its manifest could not be read (${e instanceof Error ? e.message : String(e)}). Press Load to try.`);
    }
  }

  /** Reads the manifest (when online) and estimates GPU memory; never throws. */
  private async preflight(url: string, maxContext: number, signal: AbortSignal): Promise<Message[]> {
    if (navigator.onLine === false) return [];
    try {
      const r = await fetch(new URL('manifest.json', url.endsWith('/') ? url : `${url}/`), { signal, cache: 'no-cache' });
      if (!r.ok) return [];
      const facts = modelFacts(await r.json());
      return facts ? memoryMessages(facts, maxContext, this.caps.adapter) : [];
    } catch {
      return []; // the loader itself reports network problems (and may use the cache)
    }
  }

  private progress(p: LoadProgress): void {
    this.bar.dataset.phase = p.phase;
    const parts = [PHASES[p.phase]];
    if (p.totalBytes > 0) {
      const frac = p.loadedBytes / p.totalBytes;
      this.bar.max = 1;
      this.bar.value = frac;
      parts.push(`${formatBytes(p.loadedBytes)} of ${formatBytes(p.totalBytes)} (${formatPercent(frac)})`);
      if (p.bytesPerSecond > 0 && p.phase !== 'done') {
        const left = (p.totalBytes - p.loadedBytes) / p.bytesPerSecond;
        parts.push(formatRate(p.bytesPerSecond), `${formatDuration(left)} left`);
      }
      if (p.shardCount > 1 && p.shardIndex >= 0) parts.push(`shard ${p.shardIndex + 1} of ${p.shardCount}`);
    }
    this.setStatus(parts.join(' · '));
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }
}

/** One sentence a user can act on, per error class. */
export function describeLoadError(e: unknown): string {
  if (e instanceof AbortError || (e instanceof DOMException && e.name === 'AbortError')) {
    return 'Cancelled. Files already downloaded stay in the browser cache: Load again to resume (only missing shards are fetched).';
  }
  if (e instanceof QuotaError) {
    return `Not enough browser storage: ${formatBytes(e.neededBytes)} needed, ${e.availableBytes === null ? 'free space unknown' : `${formatBytes(e.availableBytes)} available`}. Delete cached models below or free disk space.`;
  }
  if (e instanceof NetworkError) {
    return `Network problem: ${e.message}. Check the URL and that the host allows cross-origin requests (CORS); Load again to resume.`;
  }
  if (e instanceof PixtralError) return `${e.name}: ${e.message}`;
  return `Loading failed: ${e instanceof Error ? e.message : String(e)}`;
}
