/**
 * Chat messages on their way to a prompt: the shape check that every entry (engine, server,
 * `encodeChat`) runs before any image work, and mistral_common's normalisation
 * (`InstructRequestNormalizer`), which the chat layouts of `prompt.ts` start from.
 *
 * Normalisation, as the reference does it: consecutive messages of one role form one turn (a
 * system message breaks the run); a user turn keeps its images in order, the text between two
 * images joined by a blank line (a turn without images becomes one string); an assistant or
 * system turn is its text parts joined by a blank line.
 */
import { FormatError } from '../errors.js';

export type Role = 'system' | 'user' | 'assistant';

export interface TextPart {
  type: 'text';
  text: string;
}

/** An image already reduced to its token grid (the caller preprocessed it). */
export interface GridPart {
  type: 'image';
  rows: number;
  cols: number;
}

export interface PromptMessage {
  role: Role;
  content: string | (TextPart | GridPart)[];
}

/** One normalised turn. */
export type Turn =
  | { role: 'system'; text: string }
  | { role: 'assistant'; text: string }
  | { role: 'user'; content: string | (TextPart | GridPart)[] };

const ROLES: readonly string[] = ['system', 'user', 'assistant'];

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/**
 * Throws FormatError, naming the message and part index, unless `messages` is a conversation
 * Mistral's chat formats can hold: an array of `{ role, content }` with `role` system, user or
 * assistant; `content` a string or an array of `{ type: 'text', text }` and `{ type: 'image' }`
 * parts (the image payload is the caller's to check); images only in user messages (the formats
 * have none in system or assistant messages); the first and the last message other than system
 * ones from the user.
 */
export function checkChatMessages(messages: unknown): void {
  if (!Array.isArray(messages)) throw new FormatError(`messages must be an array of { role, content } (got ${show(messages)})`);
  let first: string | undefined;
  let last: string | undefined;
  messages.forEach((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw new FormatError(`message ${i} must be an object { role, content } (got ${show(m)})`);
    }
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      throw new FormatError(`message ${i}: role must be "system", "user" or "assistant" (got ${show(role)})`);
    }
    const where = `message ${i} (${role})`;
    if (typeof content !== 'string') {
      if (!Array.isArray(content)) throw new FormatError(`${where}: content must be a string or an array of parts (got ${show(content)})`);
      content.forEach((p: unknown, k) => {
        const type = typeof p === 'object' && p !== null ? (p as { type?: unknown }).type : undefined;
        if (type === 'text') {
          const text = (p as { text?: unknown }).text;
          if (typeof text !== 'string') throw new FormatError(`${where} part ${k}: a text part needs a string "text" (got ${show(text)})`);
        } else if (type === 'image') {
          if (role !== 'user') {
            throw new FormatError(`${where} part ${k} is an image: Mistral's chat formats have no images in ${role} messages, only in user messages`);
          }
        } else {
          throw new FormatError(`${where} part ${k}: type must be "text" or "image" (got ${type === undefined ? show(p) : show(type)})`);
        }
      });
    }
    if (role !== 'system') {
      first ??= role;
      last = role;
    }
  });
  if (first === undefined) throw new FormatError('the conversation has no user message');
  if (first !== 'user') throw new FormatError(`the conversation must start with a user message (after any system messages), not ${first}`);
  if (last !== 'user') throw new FormatError(`the conversation must end with a user message, not ${last}`);
}

function joinedText(content: PromptMessage['content']): string {
  return typeof content === 'string' ? content : content.map((p) => (p as TextPart).text).join('\n\n');
}

/** A run of user messages as one user turn (mistral_common's `_aggregate_user_messages`). */
function userTurn(run: PromptMessage[]): Turn {
  const parts: (TextPart | GridPart)[] = [];
  let texts: string[] = [];
  for (const m of run) {
    for (const p of typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content) {
      if (p.type === 'text') {
        texts.push(p.text);
        continue;
      }
      if (texts.length) parts.push({ type: 'text', text: texts.join('\n\n') });
      texts = [];
      parts.push(p);
    }
  }
  const text = texts.join('\n\n');
  if (!parts.length) return { role: 'user', content: text };
  if (text) parts.push({ type: 'text', text });
  return { role: 'user', content: parts };
}

/** Checked messages -> normalised turns (see the module comment). */
export function toTurns(messages: PromptMessage[]): Turn[] {
  checkChatMessages(messages);
  const turns: Turn[] = [];
  for (let i = 0; i < messages.length; ) {
    const role = messages[i]!.role;
    if (role === 'system') {
      turns.push({ role, text: joinedText(messages[i++]!.content) });
      continue;
    }
    const run: PromptMessage[] = [];
    while (i < messages.length && messages[i]!.role === role) run.push(messages[i++]!);
    if (role === 'user') turns.push(userTurn(run));
    else {
      const text = run.map((m) => joinedText(m.content)).filter((t) => t).join('\n\n');
      if (!text) throw new FormatError(`message ${i - 1} (assistant) is empty: an earlier answer needs its text`);
      turns.push({ role, text });
    }
  }
  return turns;
}
