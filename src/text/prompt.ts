/**
 * The one prompt builder: Mistral's chat layouts by tokenizer version, as mistral_common's
 * instruct tokenizers write them, and the image-token layout. Goldens:
 * `../shared/fixtures/prompts/prompts.json` (test/unit/prompt.test.ts).
 *
 * - v3 (Pixtral-12B-2409): `<s>[INST]user[/INST]answer</s>[INST]...[/INST]`; the system prompt
 *   (every system message, joined by a blank line) goes into the **last** user turn, before its
 *   content, followed by `\n\n`.
 * - v7 (Mistral-Small-3.1/3.2): the same turns, and each system message stays where it is as
 *   `[SYSTEM_PROMPT]text[/SYSTEM_PROMPT]` (in practice at the start, before the first `[INST]`).
 *
 * Both: an assistant answer loses its trailing spaces; an image with a rows x cols token grid is
 * `rows` runs of `[IMG]` x cols, each closed by `[IMG_BREAK]`, the last by `[IMG_END]`; text and
 * images appear in the order given, each text part encoded on its own. Text that spells a control
 * token is plain text. Other versions are a FormatError, never a silent v3.
 *
 * `layoutPrompt` says what goes where; `renderPrompt` / `renderPromptAsync` encode it (the latter
 * with an encoder that can pause and abort on long text).
 */
import type { SpecialTokens } from '../config.js';
import { FormatError } from '../errors.js';
import { toTurns, type GridPart, type PromptMessage, type TextPart, type Turn } from './messages.js';
import { requireId, type SpecialIds } from './special-ids.js';

export type { GridPart, PromptMessage, Role, TextPart } from './messages.js';
export { checkChatMessages } from './messages.js';

/** Chat layouts implemented here, by tokenizer version (tekken.json `config.version`). */
export const CHAT_VERSIONS = ['v3', 'v7'] as const;
export type ChatVersion = (typeof CHAT_VERSIONS)[number];

export interface RenderedPrompt {
  /** The whole prompt, BOS included, ready for the model's answer. */
  ids: number[];
  /** Where each image's tokens start in `ids`, in the order the images appear. */
  images: { start: number; rows: number; cols: number }[];
}

/** A prompt before encoding: control-token ids, text to encode, or an image grid. */
export type PromptSegment = number[] | string | GridPart;

/** Token ids of one image: rows x ([IMG] x cols + [IMG_BREAK]), last token [IMG_END]. */
export function imageTokenIds(rows: number, cols: number, t: Pick<SpecialTokens, 'img' | 'imgBreak' | 'imgEnd'>): number[] {
  if (!(rows >= 1 && cols >= 1 && Number.isInteger(rows) && Number.isInteger(cols))) {
    throw new FormatError(`image grid ${rows}x${cols} is not a positive integer grid`);
  }
  const ids: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) ids.push(t.img);
    ids.push(r === rows - 1 ? t.imgEnd : t.imgBreak);
  }
  return ids;
}

/** Number of prompt tokens an image of this grid takes (rows * (cols + 1)). */
export function imageTokenCount(rows: number, cols: number): number {
  return rows * (cols + 1);
}

/** `version` as an implemented chat layout, or a FormatError that says what is missing. */
export function chatVersion(version: string | undefined): ChatVersion {
  if (version === undefined) {
    throw new FormatError(
      'the tokenizer names no chat-format version (a tokenizer.json has none): load it with loadTokenizer(file, { version }), e.g. the manifest\'s',
    );
  }
  if (!(CHAT_VERSIONS as readonly string[]).includes(version)) {
    throw new FormatError(`chat layout "${version}" is not implemented (implemented: ${CHAT_VERSIONS.join(', ')})`);
  }
  return version as ChatVersion;
}

/** mistral_common's `rstrip(" ")` (a loop: `/ +$/` is quadratic on long runs of spaces). */
function withoutTrailingSpaces(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x20) end--;
  return s.slice(0, end);
}

/** A user turn's segments; `system` (v3) goes before the content, joined to leading text. */
function userSegments(turn: Turn & { role: 'user' }, system: string | undefined): PromptSegment[] {
  const prefix = system ? `${system}\n\n` : '';
  if (typeof turn.content === 'string') return [prefix + turn.content];
  const out: PromptSegment[] = [];
  turn.content.forEach((p: TextPart | GridPart, k) => {
    const lead = k === 0 ? prefix : '';
    if (p.type === 'text') out.push(lead + p.text);
    else {
      if (lead) out.push(lead);
      out.push({ type: 'image', rows: p.rows, cols: p.cols });
    }
  });
  return out;
}

/** The layout of a conversation for a tokenizer version (see the module comment). */
export function layoutPrompt(messages: PromptMessage[], version: string | undefined, ids: SpecialIds): PromptSegment[] {
  const v = chatVersion(version);
  const turns = toTurns(messages);
  const inst = requireId(ids, 'inst', 'for a user turn');
  const instEnd = requireId(ids, 'instEnd', 'for a user turn');
  const out: PromptSegment[] = [[requireId(ids, 'bos', 'to start a prompt')]];
  const systems = turns.flatMap((t) => (t.role === 'system' && t.text ? [t.text] : []));
  const v3System = v === 'v3' && systems.length ? systems.join('\n\n') : undefined;
  let lastUser = -1;
  for (let i = 0; i < turns.length; i++) if (turns[i]!.role === 'user') lastUser = i;
  if (v === 'v7' && lastUser !== turns.length - 1) {
    throw new FormatError('the conversation must end with a user message: the v7 layout has no place for a system message after it');
  }
  turns.forEach((t, i) => {
    if (t.role === 'system') {
      if (v === 'v7') {
        const why = 'for a system message in the v7 layout';
        out.push([requireId(ids, 'system', why)], t.text, [requireId(ids, 'systemEnd', why)]);
      }
    } else if (t.role === 'assistant') {
      out.push(withoutTrailingSpaces(t.text), [requireId(ids, 'eos', 'to end an answer')]);
    } else {
      out.push([inst]);
      for (const seg of userSegments(t, i === lastUser ? v3System : undefined)) out.push(seg);
      out.push([instEnd]);
    }
  });
  return out;
}

/** Encodes segments; asks its driver for each text's ids (one builder for sync and async). */
function* build(segments: PromptSegment[], ids: SpecialIds): Generator<string, RenderedPrompt, number[]> {
  const out: number[] = [];
  const images: RenderedPrompt['images'] = [];
  const append = (xs: readonly number[]): void => {
    for (const x of xs) out.push(x); // not push(...xs): long text would overflow the call stack
  };
  for (const s of segments) {
    if (typeof s === 'string') {
      if (s) append(yield s);
    } else if (Array.isArray(s)) {
      append(s);
    } else {
      images.push({ start: out.length, rows: s.rows, cols: s.cols });
      const why = 'for an image';
      append(imageTokenIds(s.rows, s.cols, { img: requireId(ids, 'img', why), imgBreak: requireId(ids, 'imgBreak', why), imgEnd: requireId(ids, 'imgEnd', why) }));
    }
  }
  return { ids: out, images };
}

/** A conversation's prompt ids: `layoutPrompt`, then `encode` for each text. */
export function renderPrompt(
  messages: PromptMessage[],
  version: string | undefined,
  ids: SpecialIds,
  encode: (text: string) => number[],
): RenderedPrompt {
  const g = build(layoutPrompt(messages, version, ids), ids);
  for (let step = g.next(); ; step = g.next(encode(step.value))) if (step.done) return step.value;
}

/** `renderPrompt` with an asynchronous encoder (one that yields and can abort on long text). */
export async function renderPromptAsync(
  messages: PromptMessage[],
  version: string | undefined,
  ids: SpecialIds,
  encode: (text: string) => Promise<number[]>,
): Promise<RenderedPrompt> {
  const g = build(layoutPrompt(messages, version, ids), ids);
  for (let step = g.next(); ; step = g.next(await encode(step.value))) if (step.done) return step.value;
}
