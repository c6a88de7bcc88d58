/**
 * The Mistral instruct format as Pixtral (Tekken, instruct v3) expects it, and the image-token
 * layout. Turns render as `<s>[INST]user[/INST]assistant</s>[INST]user[/INST]` with no spaces
 * around the control tokens; a system prompt is prepended to the last user message followed by
 * a blank line (mistral_common's rule). An image with a rows x cols token grid becomes `rows`
 * runs of `[IMG]` x cols, each closed by `[IMG_BREAK]`, the very last one by `[IMG_END]`;
 * images and text appear in the order the message gives them.
 */
import type { SpecialTokens } from '../config.js';
import { FormatError } from '../errors.js';

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

export type Role = 'system' | 'user' | 'assistant';

export interface PromptMessage {
  role: Role;
  content: string | (TextPart | GridPart)[];
}

export interface RenderedPrompt {
  ids: number[];
  /** Where each image's tokens start in `ids`, in the order the images appear. */
  images: { start: number; rows: number; cols: number }[];
}

/** Token ids of one image: rows x ([IMG] x cols + [IMG_BREAK]), last token [IMG_END]. */
export function imageTokenIds(rows: number, cols: number, t: SpecialTokens): number[] {
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

/**
 * Renders a conversation to token ids. The conversation must alternate user/assistant turns
 * (after an optional leading system message) and end with a user turn; the model's answer
 * follows the returned ids.
 */
export function renderPrompt(
  messages: PromptMessage[],
  encode: (text: string) => number[],
  t: SpecialTokens,
): RenderedPrompt {
  let system: string | undefined;
  const turns = messages.filter((m) => {
    if (m.role !== 'system') return true;
    const text = typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    system = system === undefined ? text : `${system}\n\n${text}`;
    return false;
  });
  if (!turns.length || turns[turns.length - 1]!.role !== 'user') {
    throw new FormatError('the conversation must end with a user message');
  }
  const ids: number[] = [t.bos];
  const images: RenderedPrompt['images'] = [];
  const lastUser = turns.length - 1;
  turns.forEach((m, i) => {
    const expected: Role = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== expected) throw new FormatError(`message ${i} should be "${expected}", got "${m.role}" (turns must alternate)`);
    const parts: (TextPart | GridPart)[] = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (m.role === 'assistant') {
      for (const p of parts) {
        if (p.type !== 'text') throw new FormatError('assistant messages cannot contain images');
        ids.push(...encode(p.text));
      }
      ids.push(t.eos);
      return;
    }
    ids.push(t.inst);
    if (i === lastUser && system) ids.push(...encode(`${system}\n\n`));
    for (const p of parts) {
      if (p.type === 'text') {
        if (p.text) ids.push(...encode(p.text));
      } else {
        images.push({ start: ids.length, rows: p.rows, cols: p.cols });
        ids.push(...imageTokenIds(p.rows, p.cols, t));
      }
    }
    ids.push(t.instEnd);
  });
  return { ids, images };
}
