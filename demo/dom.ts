/**
 * DOM helpers of the demo: element lookup that fails loudly, an element builder that only ever
 * sets text (never HTML), and the rendering of capability/status messages.
 */
import type { Message } from './capabilities.js';

/** `document.getElementById` that throws when the page and the code disagree. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`demo: #${id} is missing from index.html`);
  return e as T;
}

/** Creates `<tag class=... >text</tag>`; `text` goes in as textContent, never as HTML. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { className?: string; text?: string; attrs?: Record<string, string> } = {},
  children: (Node | null)[] = [],
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  for (const c of children) if (c) e.append(c);
  return e;
}

/** Replaces the content of `box` with one paragraph per message, styled by level. */
export function renderMessages(box: HTMLElement, messages: Message[]): void {
  box.replaceChildren(
    ...messages.map((m) => el('p', { className: `msg msg-${m.level}`, text: m.text, attrs: m.level === 'error' ? { role: 'alert' } : {} })),
  );
}
