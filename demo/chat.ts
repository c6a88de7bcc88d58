/**
 * The conversation: a question goes out with the images selected in the tray, the answer streams
 * in (inserted with textContent only: model output is never HTML), Stop aborts it through an
 * AbortController, and each answer gets its stats (image encode ms, prefill and decode tokens/s,
 * tokens reused from the KV cache). Follow-up questions send the whole history, so the engine
 * reuses its KV cache for everything already seen; "New conversation" resets it.
 */
import { AbortError, ContextLengthError, PixtralError, type ChatMessage, type GenerationStats, type PixtralModel } from '../src/index.js';
import { byId, el } from './dom.js';
import { formatNumber } from './format.js';
import { readStream } from './stream.js';
import type { ImageTray, TrayImage } from './images.js';

/** What answers the conversation: the loaded `PixtralModel`, or a remote server (`remote.ts`). */
export type ChatTarget = Pick<PixtralModel, 'chat' | 'reset'> & { describe?(stats: GenerationStats): string };

export interface Turn {
  question: string;
  answer: string;
  stats: GenerationStats | null;
  error: string | null;
}

export class Chat {
  private readonly form = byId<HTMLFormElement>('chat-form');
  private readonly input = byId<HTMLTextAreaElement>('question');
  private readonly ask = byId<HTMLButtonElement>('ask');
  private readonly stop = byId<HTMLButtonElement>('stop');
  private readonly reset = byId<HTMLButtonElement>('new-conversation');
  private readonly log = byId<HTMLOListElement>('conversation');
  private readonly maxTokens = byId<HTMLInputElement>('max-tokens');
  private readonly temperature = byId<HTMLInputElement>('temperature');
  private model: ChatTarget | null = null;
  private history: ChatMessage[] = [];
  private controller: AbortController | null = null;
  /** Resolves when the current answer is finished (for tests and the page API). */
  private current: Promise<Turn> | null = null;

  constructor(private readonly tray: ImageTray) {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    // Enter sends, Shift+Enter starts a new line.
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void this.send();
      }
    });
    this.stop.addEventListener('click', () => this.controller?.abort());
    this.reset.addEventListener('click', () => void this.newConversation());
    this.sync();
  }

  setModel(model: ChatTarget | null): void {
    this.model = model;
    this.history = [];
    this.tray.resetSent();
    this.sync();
  }

  get busy(): boolean {
    return this.controller !== null;
  }

  /** The answer in progress, if any. */
  get pending(): Promise<Turn> | null {
    return this.current;
  }

  async newConversation(): Promise<void> {
    this.controller?.abort();
    await this.current?.catch(() => undefined);
    this.history = [];
    this.tray.resetSent();
    this.log.replaceChildren();
    if (this.model) await this.model.reset();
    this.input.focus();
  }

  private sync(): void {
    const generating = this.controller !== null;
    this.ask.disabled = !this.model || generating;
    this.stop.disabled = !generating;
    this.reset.disabled = generating;
    this.input.placeholder = this.model ? 'Ask about the images, e.g. What color is the box?' : 'Load a model first';
  }

  /** Sends the question in the box (or `text`); resolves with the finished turn. */
  send(text?: string): Promise<Turn> {
    const question = (text ?? this.input.value).trim();
    if (!this.model || this.controller || !question) {
      return Promise.resolve({ question, answer: '', stats: null, error: !this.model ? 'no model loaded' : this.controller ? 'busy' : 'empty question' });
    }
    this.input.value = '';
    // Set at once: a second Enter while images are still being prepared is refused.
    const controller = new AbortController();
    this.controller = controller;
    this.sync();
    this.current = this.run(this.model, question, controller);
    return this.current;
  }

  private async run(model: ChatTarget, question: string, controller: AbortController): Promise<Turn> {
    // Files still being decoded or PDF pages still rendering belong to this question.
    while (this.tray.busy) await new Promise((r) => setTimeout(r, 50));
    const images = this.tray.selected();
    const user: ChatMessage = images.length
      ? { role: 'user', content: [...images.map((i) => ({ type: 'image' as const, image: i.source })), { type: 'text' as const, text: question }] }
      : { role: 'user', content: question };
    const messages = [...this.history, user];
    const view = this.appendTurn(question, images);
    const turn: Turn = { question, answer: '', stats: null, error: null };
    view.answer.setAttribute('aria-busy', 'true');
    try {
      const stream = model.chat(messages, {
        signal: controller.signal,
        longestEdge: this.tray.longestEdge(),
        maxTokens: clampInt(this.maxTokens.value, 1, 4096, 256),
        temperature: clampFloat(this.temperature.value, 0, 2, 0),
      });
      turn.stats = await readStream(stream, (delta) => {
        turn.answer += delta;
        view.answer.textContent = turn.answer; // text only, never HTML
      });
      if (!turn.answer) view.answer.textContent = '(empty answer)';
      view.stats.textContent = (model.describe ?? describeStats)(turn.stats);
      this.history = [...messages, { role: 'assistant', content: turn.answer }];
      this.tray.markSent(images);
    } catch (e) {
      turn.error = describeChatError(e);
      if (e instanceof AbortError) {
        view.answer.textContent = turn.answer || '(stopped before the first token)';
      }
      view.stats.textContent = turn.error;
      view.stats.classList.add('error');
    } finally {
      view.answer.removeAttribute('aria-busy');
      view.root.dataset.done = turn.error ? 'error' : 'ok';
      this.controller = null;
      this.sync();
    }
    return turn;
  }

  private appendTurn(question: string, images: TrayImage[]) {
    const answer = el('p', { className: 'answer', attrs: { 'aria-live': 'polite' } });
    const stats = el('p', { className: 'stats' });
    const thumbs = images.length
      ? el('p', { className: 'attached', text: `with ${images.length} image${images.length === 1 ? '' : 's'}: ${images.map((i) => i.name).join(', ')}` })
      : null;
    const root = el('li', { className: 'turn' }, [
      el('p', { className: 'question' }, [el('span', { className: 'who', text: 'You: ' }), document.createTextNode(question)]),
      thumbs,
      el('div', { className: 'reply' }, [el('span', { className: 'who', text: 'Model: ' }), answer]),
      stats,
    ]);
    this.log.append(root);
    root.scrollIntoView({ block: 'nearest' });
    return { root, answer, stats };
  }
}

export function describeStats(s: GenerationStats): string {
  const parts = [
    s.imagesEncoded ? `image encode ${formatNumber(s.imageEncodeMs, 0)} ms (${s.imagesEncoded} image${s.imagesEncoded === 1 ? '' : 's'})` : 'no image encoded',
    `prefill ${formatNumber(s.prefillTokensPerSecond)} tokens/s`,
    `decode ${formatNumber(s.decodeTokensPerSecond)} tokens/s`,
    `${s.promptTokens} prompt tokens (${s.imageTokens} for images), ${s.reusedTokens} reused from the KV cache`,
    `${s.generatedTokens} generated`,
    s.finishReason === 'eos' ? 'finished' : s.finishReason === 'length' ? 'stopped at the token limit' : s.finishReason === 'abort' ? 'stopped' : 'stop string',
  ];
  return parts.join(' · ');
}

export function describeChatError(e: unknown): string {
  if (e instanceof AbortError) return 'Stopped.';
  if (e instanceof ContextLengthError) {
    return `Too long for the context: ${e.promptTokens} tokens needed, ${e.maxTokens} available. Start a new conversation, use the "faster" option (fewer image tokens), or load the model with a longer context.`;
  }
  if (e instanceof PixtralError) return `${e.name}: ${e.message}`;
  return `Error: ${e instanceof Error ? e.message : String(e)}`;
}

function clampInt(v: string, lo: number, hi: number, dflt: number): number {
  const n = Math.round(Number(v));
  return Number.isFinite(n) && v.trim() !== '' ? Math.min(hi, Math.max(lo, n)) : dflt;
}

function clampFloat(v: string, lo: number, hi: number, dflt: number): number {
  const n = Number(v);
  return Number.isFinite(n) && v.trim() !== '' ? Math.min(hi, Math.max(lo, n)) : dflt;
}
