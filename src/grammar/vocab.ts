/**
 * The Tekken vocabulary as xgrammar reads it: one string per id, in the "byte_level" encoding
 * (each token byte as the printable character GPT-2's byte-to-unicode table gives it, so any
 * byte sequence, even a partial UTF-8 character, round-trips exactly). Control tokens become ''
 * so the grammar never places them inside the output (xgrammar treats empty tokens as special:
 * never allowed, except the stop token once the grammar is complete). Tokens holding a control
 * byte (< 0x20) become '' too: compact JSON never contains one (raw control characters are
 * invalid inside JSON strings, and the layout has no newlines), and xgrammar 0.1.27 admits byte 0
 * inside strings, which made invalid JSON.
 */
import type { Tokenizer } from '../text/tokenizer.js';

/** byte -> the code point GPT-2's `bytes_to_unicode` maps it to. */
function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : next++);
  return table;
}

let table: string[] | undefined;

/** Every id's token, byte-level encoded; '' for control tokens. */
export function byteLevelVocab(tok: Pick<Tokenizer, 'vocabSize' | 'isSpecial' | 'idToBytes'>): string[] {
  table ??= byteToUnicode();
  const t = table;
  const out: string[] = new Array(tok.vocabSize);
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.isSpecial(id)) {
      out[id] = '';
      continue;
    }
    const bytes = tok.idToBytes(id);
    let s = '';
    for (const b of bytes) s += t[b];
    out[id] = bytes.some((b) => b < 0x20) ? '' : s;
  }
  return out;
}
