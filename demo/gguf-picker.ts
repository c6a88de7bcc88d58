/**
 * The model picker's GGUF part: a llama.cpp text GGUF and its mmproj, as two URLs or two files
 * from disk (picked files take precedence; they are read in place, never uploaded), and the facts
 * of their headers (`gguf-facts.ts`) shown as soon as both are given, before any weight is read.
 */
import { inspectGguf } from '../src/index.js';
import type { AdapterSummary } from './capabilities.js';
import { byId, renderMessages } from './dom.js';
import { ggufPairFacts, type GgufPairFacts } from './gguf-facts.js';

/** The chosen pair: what `loadPixtral` takes as `url`/`mmproj`, and a label for the page. */
export interface GgufPair {
  url: string | File;
  mmproj: string | File;
  label: string;
}

export class GgufPicker {
  readonly fields = byId<HTMLFieldSetElement>('gguf-fields');
  private readonly url = byId<HTMLInputElement>('gguf-url');
  private readonly mmprojUrl = byId<HTMLInputElement>('gguf-mmproj-url');
  private readonly file = byId<HTMLInputElement>('gguf-file');
  private readonly mmprojFile = byId<HTMLInputElement>('gguf-mmproj-file');
  private readonly facts = byId<HTMLElement>('gguf-facts');
  /** Bumped per header read, so a slow earlier read never overwrites a later one's facts. */
  private inspection = 0;

  constructor(
    private readonly adapter: AdapterSummary | null,
    /** The context length chosen in the page (the fit depends on it). */
    private readonly maxContext: () => number,
  ) {
    byId<HTMLButtonElement>('gguf-inspect').addEventListener('click', () => void this.readFacts());
  }

  /** Fills in the two URLs (a `?model=...&mmproj=...` link). */
  setUrls(url: string, mmproj: string): void {
    this.url.value = url;
    this.mmprojUrl.value = mmproj;
  }

  /** Picked files when both are there, else the two URLs (absolute); null while incomplete. */
  pair(): GgufPair | null {
    const file = this.file.files?.[0];
    const mmprojFile = this.mmprojFile.files?.[0];
    if (file && mmprojFile) return { url: file, mmproj: mmprojFile, label: `${file.name} + ${mmprojFile.name} (files)` };
    const url = this.url.value.trim();
    const mmproj = this.mmprojUrl.value.trim();
    if (!url || !mmproj) return null;
    const abs = (u: string) => new URL(u, location.href).href;
    return { url: abs(url), mmproj: abs(mmproj), label: abs(url) };
  }

  /** Reads both headers (Range requests, or the files in place) and shows their facts; never throws. */
  async readFacts(signal?: AbortSignal): Promise<GgufPairFacts | null> {
    const pair = this.pair();
    if (!pair) {
      renderMessages(this.facts, [{ level: 'info', text: 'Choose the model GGUF and its mmproj: two URLs, or two files.' }]);
      return null;
    }
    const n = ++this.inspection;
    renderMessages(this.facts, [{ level: 'info', text: 'Reading the GGUF headers…' }]);
    try {
      const [text, mmproj] = await Promise.all([inspectGguf(pair.url, { signal }), inspectGguf(pair.mmproj, { signal })]);
      const facts = ggufPairFacts(text.header, mmproj.header, this.maxContext(), this.adapter);
      if (n === this.inspection) {
        renderMessages(this.facts, [...facts.lines.map((text) => ({ level: 'info' as const, text })), ...facts.messages]);
        this.facts.dataset.fits = String(facts.fits);
      }
      return facts;
    } catch (e) {
      if (n === this.inspection) {
        renderMessages(this.facts, [{ level: 'error', text: `The GGUF headers could not be read: ${e instanceof Error ? e.message : String(e)}` }]);
        this.facts.dataset.fits = 'false';
      }
      return null;
    }
  }
}
