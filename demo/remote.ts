/**
 * The "Remote server" setting: instead of the model on this page's GPU, chat and extraction go to
 * an OpenAI-compatible server (vLLM, `pixtral-webgpu serve --cors <this page's origin>`, a hosted
 * API) through `createEngine({ baseURL, model, apiKey })`. Also adapts that engine to the chat
 * panel's `ChatTarget` (streamed text deltas + stats from the server's `usage`).
 */
import { AbortError, createEngine, type ChatEngine, type ChatMessage, type ChatStream, type CreateParams, type GenerationStats } from '../src/index.js';
import type { ChatTarget } from './chat.js';
import { el } from './dom.js';
import { formatNumber } from './format.js';

export interface RemoteChoice {
  engine: ChatEngine;
  /** The chat panel's view of the same engine. */
  target: ChatTarget;
}

function field(id: string, label: string, attrs: Record<string, string>): [HTMLLabelElement, HTMLInputElement] {
  const input = el('input', { attrs: { id, ...attrs } });
  return [el('label', { text: label, attrs: { for: id } }), input];
}

/** Builds the setting into `mount`; `changed` gets the remote engine, or null for the local model. */
export class RemoteSettings {
  private readonly enabled = el('input', { attrs: { id: 'remote-enabled', type: 'checkbox' } });
  private readonly baseURL: HTMLInputElement;
  private readonly model: HTMLInputElement;
  private readonly apiKey: HTMLInputElement;
  private readonly status = el('p', { attrs: { id: 'remote-status', role: 'status', 'aria-live': 'polite' } });
  private current: RemoteChoice | null = null;

  constructor(mount: HTMLElement, private readonly changed: (choice: RemoteChoice | null) => void) {
    const [urlLabel, url] = field('remote-base-url', 'Base URL (ends in /v1)', { type: 'url', inputmode: 'url', placeholder: 'https://my-vllm.example.com/v1' });
    const [modelLabel, model] = field('remote-model', 'Model name on the server', { type: 'text', placeholder: 'mistralai/Pixtral-12B-2409' });
    const [keyLabel, key] = field('remote-api-key', 'API key (optional)', { type: 'password', autocomplete: 'off' });
    this.baseURL = url;
    this.model = model;
    this.apiKey = key;
    const apply = el('button', { text: 'Use this server', attrs: { id: 'remote-apply', type: 'button' } });
    mount.replaceChildren(
      el('legend', { text: 'Remote server (OpenAI-compatible)' }),
      el('label', { className: 'choice' }, [this.enabled, document.createTextNode(' Send chat and extraction to a server instead of the local model')]),
      urlLabel, url, modelLabel, model, keyLabel, key,
      el('p', {
        className: 'msg msg-warn',
        text: 'A key typed here is visible to everyone who uses this page: put the key of a proxy you control here (or none), never a provider\'s secret key. The server must allow this page\'s origin (CORS, e.g. pixtral-webgpu serve --cors <origin>).',
      }),
      el('div', { className: 'buttons' }, [apply]),
      this.status,
    );
    apply.addEventListener('click', () => {
      this.enabled.checked = true;
      void this.apply();
    });
    this.enabled.addEventListener('change', () => void this.apply());
  }

  get active(): RemoteChoice | null {
    return this.current;
  }

  private async apply(): Promise<void> {
    const old = this.current;
    this.current = null;
    if (!this.enabled.checked) {
      this.status.textContent = 'Using the local model.';
      this.changed(null);
      await old?.engine.dispose();
      return;
    }
    const baseURL = this.baseURL.value.trim();
    const model = this.model.value.trim();
    const problem = checkBaseUrl(baseURL) ?? (model ? null : 'Give the model name the server serves.');
    if (problem) {
      this.status.textContent = problem;
      this.status.className = 'msg msg-error';
      this.changed(null);
      return;
    }
    const apiKey = this.apiKey.value.trim();
    const engine = await createEngine({ baseURL, model, ...(apiKey ? { apiKey } : {}) });
    this.current = { engine, target: remoteChatTarget(engine) };
    this.status.className = '';
    this.status.textContent = `Chat and extraction go to ${baseURL} (model ${model}).`;
    this.changed(this.current);
    await old?.engine.dispose();
  }
}

function checkBaseUrl(text: string): string | null {
  if (!text) return 'Give the server\'s base URL, e.g. https://my-vllm.example.com/v1';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL.`;
  }
  return url.protocol === 'https:' || url.protocol === 'http:' ? null : `Only http(s) servers are supported (got ${url.protocol}).`;
}

/** The chat panel's view of a remote engine: streamed deltas; stats from the final `usage`. */
export function remoteChatTarget(engine: ChatEngine): ChatTarget {
  return {
    chat(messages: ChatMessage[], opts = {}): ChatStream {
      let settle!: { ok: (s: GenerationStats) => void; fail: (e: unknown) => void };
      const stats = new Promise<GenerationStats>((ok, fail) => (settle = { ok, fail }));
      stats.catch(() => undefined); // the error reaches the reader through the iterator
      const params: CreateParams & { stream: true } = {
        messages: messages as CreateParams['messages'],
        stream: true,
        ...(opts.maxTokens !== undefined ? { max_tokens: opts.maxTokens } : {}),
        ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
        ...(opts.longestEdge !== undefined ? { longest_edge: opts.longestEdge } : {}),
      };
      async function* run(): AsyncGenerator<string> {
        const t0 = performance.now();
        try {
          const chunks = await engine.chat.completions.create(params, { signal: opts.signal ?? null });
          let s: GenerationStats = remoteStats(0, 0, 0, 'eos');
          for await (const c of chunks) {
            const text = c.choices[0]?.delta.content;
            if (text) yield text;
            const finish = c.choices[0]?.finish_reason;
            if (finish || c.usage) {
              s = remoteStats(c.usage?.prompt_tokens ?? s.promptTokens, c.usage?.completion_tokens ?? s.generatedTokens, performance.now() - t0, finish === 'length' ? 'length' : 'eos');
            }
          }
          if (opts.signal?.aborted) throw new AbortError();
          settle.ok(s);
        } catch (e) {
          settle.fail(e);
          throw e;
        }
      }
      const it = run();
      return { [Symbol.asyncIterator]: () => it, stats };
    },
    // The server keeps no conversation state: nothing to reset.
    reset: async () => undefined,
    describe: (s) =>
      `remote server (${engine.info.baseURL}) · ${s.promptTokens} prompt tokens · ${s.generatedTokens} generated in ${formatNumber(s.decodeMs, 0)} ms · ` +
      (s.finishReason === 'length' ? 'stopped at the token limit' : 'finished'),
  };
}

/** What a server reports, in the engine's stats shape; the timings it does not report stay 0. */
function remoteStats(promptTokens: number, generatedTokens: number, ms: number, finishReason: GenerationStats['finishReason']): GenerationStats {
  return {
    promptTokens, imageTokens: 0, reusedTokens: 0, imagesEncoded: 0, imagesPreprocessed: 0, generatedTokens,
    imageEncodeMs: 0, prefillMs: 0, prefillTokensPerSecond: 0, decodeMs: ms, decodeTokensPerSecond: 0, finishReason, grammarMs: 0,
  };
}
