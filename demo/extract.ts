/**
 * "Extract as JSON": the selected images + a question go out with a JSON Schema as
 * `response_format` (grammar-constrained on the local engine, so the answer always validates;
 * a remote server applies its own support). The schema is pasted or picked from presets and
 * checked first with the library's own rules (`FormatError` names the unsupported keyword).
 * The answer is shown as formatted JSON, as text (never HTML), and can be copied or downloaded.
 */
import { checkResponseFormat, FormatError, type ChatEngine } from '../src/index.js';
import { describeChatError } from './chat.js';
import { el } from './dom.js';
import type { ImageTray } from './images.js';
import { SCHEMA_PRESETS } from './schemas.js';

/** The result of one extraction (also what `window.pixtralDemo.extract` resolves with). */
export interface Extraction {
  /** The formatted JSON shown on the page, or '' when there is none. */
  json: string;
  /** The message shown instead, or null. */
  error: string | null;
}

/** Parses and checks a pasted schema; throws with a message meant for the page. */
export function parseSchema(text: string): Record<string, unknown> {
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`The schema is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new FormatError('The schema must be a JSON object, e.g. {"type":"object","properties":{...}}');
  checkResponseFormat({ type: 'json_schema', json_schema: { schema: schema as Record<string, unknown> } });
  return schema as Record<string, unknown>;
}

export class ExtractPanel {
  private readonly preset = el('select', { attrs: { id: 'extract-preset' } });
  private readonly schema = el('textarea', { attrs: { id: 'extract-schema', rows: '8', spellcheck: 'false' } });
  private readonly question = el('input', { attrs: { id: 'extract-question', type: 'text' } });
  private readonly run = el('button', { text: 'Extract', attrs: { id: 'extract-run', type: 'button' } });
  private readonly copy = el('button', { text: 'Copy', attrs: { id: 'extract-copy', type: 'button', disabled: '' } });
  private readonly download = el('button', { text: 'Download .json', attrs: { id: 'extract-download', type: 'button', disabled: '' } });
  private readonly status = el('p', { attrs: { id: 'extract-status', role: 'status', 'aria-live': 'polite' } });
  private readonly output = el('pre', { className: 'json', attrs: { id: 'extract-output', 'aria-label': 'Extracted JSON' } });
  private json = '';
  private busy = false;

  constructor(mount: HTMLElement, private readonly tray: ImageTray, private readonly engine: () => ChatEngine | null) {
    for (const p of SCHEMA_PRESETS) this.preset.append(el('option', { text: p.label, attrs: { value: p.name } }));
    this.preset.append(el('option', { text: 'My own schema (paste it below)', attrs: { value: 'custom' } }));
    mount.replaceChildren(
      el('h2', { text: 'Extract as JSON', attrs: { id: 'extract-heading' } }),
      el('p', { className: 'muted', text: 'The answer about the ticked images (and those already in the conversation) is forced to follow a JSON Schema: pick a preset or paste your own.' }),
      el('label', { text: 'Schema preset', attrs: { for: 'extract-preset' } }), this.preset,
      el('label', { text: 'JSON Schema', attrs: { for: 'extract-schema' } }), this.schema,
      el('label', { text: 'What to extract', attrs: { for: 'extract-question' } }), this.question,
      el('div', { className: 'buttons' }, [this.run, this.copy, this.download]),
      this.status,
      this.output,
    );
    mount.setAttribute('aria-labelledby', 'extract-heading');
    this.preset.addEventListener('change', () => this.showPreset());
    this.schema.addEventListener('input', () => (this.preset.value = 'custom'));
    this.run.addEventListener('click', () => void this.extract());
    this.copy.addEventListener('click', () => void this.copyJson());
    this.download.addEventListener('click', () => this.downloadJson());
    this.showPreset();
  }

  private showPreset(): void {
    const p = SCHEMA_PRESETS.find((x) => x.name === this.preset.value);
    if (!p) return;
    this.schema.value = JSON.stringify(p.schema, null, 2);
    this.question.value = p.question;
  }

  private show(json: string, error: string | null, note = ''): Extraction {
    this.json = json;
    this.output.textContent = json; // text only, never HTML
    this.copy.disabled = this.download.disabled = !json;
    this.status.textContent = error ?? note;
    this.status.className = error ? 'msg msg-error' : '';
    if (error) this.status.setAttribute('role', 'alert');
    else this.status.setAttribute('role', 'status');
    return { json, error };
  }

  /** Runs one extraction with what the panel holds; resolves with what it shows. */
  async extract(): Promise<Extraction> {
    if (this.busy) return { json: '', error: 'busy' };
    let schema: Record<string, unknown>;
    try {
      schema = parseSchema(this.schema.value);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return this.show('', msg.startsWith('The schema') ? msg : `The schema cannot be used (${e instanceof FormatError ? e.name : 'error'}): ${msg}`);
    }
    const engine = this.engine();
    if (!engine) return this.show('', 'Load a model (or choose a remote server) first.');
    while (this.tray.busy) await new Promise((r) => setTimeout(r, 50));
    const images = this.tray.forOneShot();
    const name = SCHEMA_PRESETS.find((p) => p.name === this.preset.value)?.name ?? 'extract';
    this.busy = true;
    this.run.disabled = true;
    this.show('', null, `Extracting${engine.info.backend === 'remote' ? ` on ${engine.info.baseURL}` : ''}…`);
    try {
      const longestEdge = this.tray.longestEdge();
      const r = await engine.chat.completions.create({
        messages: [{ role: 'user', content: [...images.map((i) => ({ type: 'image' as const, image: i.source })), { type: 'text' as const, text: this.question.value.trim() || 'Extract the data.' }] }],
        response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
        max_tokens: 512,
        temperature: 0,
        ...(longestEdge ? { longest_edge: longestEdge } : {}),
      });
      const text = r.choices[0]?.message.content ?? '';
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        const shown = this.show('', r.choices[0]?.finish_reason === 'length' ? 'The answer hit the token limit before the JSON was complete.' : 'The answer is not valid JSON (the server may not support response_format).');
        this.output.textContent = text; // what came back, as text, so the user sees why
        return shown;
      }
      const imgs = `${images.length} image${images.length === 1 ? '' : 's'}`;
      return this.show(JSON.stringify(value, null, 2), null, `Done: ${imgs}, ${r.usage?.completion_tokens ?? '?'} tokens generated.`);
    } catch (e) {
      return this.show('', describeChatError(e));
    } finally {
      this.busy = false;
      this.run.disabled = false;
    }
  }

  private async copyJson(): Promise<void> {
    try {
      await navigator.clipboard.writeText(this.json);
      this.status.textContent = 'Copied to the clipboard.';
    } catch (e) {
      this.status.textContent = `Copy failed (${(e as Error).message}): select the JSON and copy it by hand.`;
    }
  }

  private downloadJson(): void {
    const name = `${SCHEMA_PRESETS.find((p) => p.name === this.preset.value)?.name ?? 'extract'}.json`;
    const url = URL.createObjectURL(new Blob([this.json + '\n'], { type: 'application/json' }));
    const a = el('a', { attrs: { href: url, download: name } });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
