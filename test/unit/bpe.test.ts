/**
 * The O(n log n) rank-merge BPE (`src/text/bpe.ts`, through `loadTokenizer`) against js-tiktoken
 * (the quadratic merge of the reference implementations, built here on the same Tekken ranks) on
 * random and adversarial strings: uniform runs of every kind of piece, small alphabets full of
 * equal-rank ties, repeated patterns, multi-byte runs, lone surrogates; with the full 131k
 * vocabulary and one cut to 2048 ids. Then long text: 200,000 characters of several kinds complete
 * (under Vitest's per-test timeout; no timing is asserted) with the reference's ids, and the
 * abortable encoder yields to the event loop and stops on its signal.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Tiktoken } from 'js-tiktoken/lite';
import { describe, expect, it } from 'vitest';
import { AbortError } from '../../src/errors.js';
import { loadTokenizer } from '../../src/text/tokenizer.js';
import { sharedDir } from '../fixture-server.js';
import { rng } from '../helpers/random.js';

const tekkenText = readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240718/tekken.json'), 'utf8');
const file = JSON.parse(tekkenText) as { config: { pattern: string }; vocab: { token_bytes: string }[] };

/** js-tiktoken over the first `ranks` Tekken ranks, ids offset by the 1000 special tokens. */
function jsTiktoken(ranks: number): (text: string) => number[] {
  const bpe = new Tiktoken({
    pat_str: file.config.pattern,
    special_tokens: {},
    bpe_ranks: `tekken 1000 ${file.vocab.slice(0, ranks).map((v) => v.token_bytes).join(' ')}`,
  });
  return (text) => bpe.encode(text);
}

const full = { ours: loadTokenizer(tekkenText), reference: jsTiktoken(130072) };
const cut = { ours: loadTokenizer(tekkenText, { vocabSize: 2048 }), reference: jsTiktoken(1048) };

/** Adversarial strings, each piece at most ~700 bytes so the quadratic reference stays quick. */
function adversarial(): string[] {
  const out: string[] = [];
  const runChars = ['a', 'e', 'z', 'A', 'Z', '-', '=', '.', '*', '7', ' ', '\n', '\t', 'é', 'ß', 'Ж', '中', 'ア', '😀', '\u0301'];
  for (const c of runChars) {
    const maxLen = Math.floor(700 / new TextEncoder().encode(c).length);
    for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 63, 64, 65, 100, 255, 256, 257, maxLen]) if (n <= maxLen) out.push(c.repeat(n));
  }
  const patterns = ['ab', 'ba', 'abc', 'aab', 'abb', 'the', 'ing', 'hello', 'aaaaaaaab', 'Ab', 'aB', '12', '-=', '. ', 'ab ', ' a', '中文', '👍🏽'];
  for (const p of patterns) for (const n of [2, 3, 10, 50, 300]) out.push(p.repeat(Math.min(n, Math.floor(700 / p.length))));
  const u = rng(9);
  const pick = (s: string): string => s[Math.floor(u() * s.length)]!;
  // Small alphabets: many equal-rank pairs, so the leftmost-on-ties rule decides the ids.
  for (const alphabet of ['ab', 'abc', 'aab', 'xyz', 'ae', 'AaBb', 'ab ', 'a-', 'éè', 'ptk', 'etaoinshr']) {
    for (let k = 0; k < 40; k++) {
      let s = '';
      const n = 1 + Math.floor(u() * (k < 30 ? 60 : 700));
      for (let i = 0; i < n; i++) s += pick(alphabet);
      out.push(s);
    }
  }
  // Lone surrogates (TextEncoder writes U+FFFD for them, in both encoders) and odd joins.
  out.push('\ud800', 'a\udc00b', '\ud83d\ud83d\ude00', 'x\ufffdy', '\u200d'.repeat(40), 'e\u0301'.repeat(200));
  return out;
}

const cases = adversarial();

describe('ids equal js-tiktoken on random and adversarial strings', () => {
  it(`${cases.length} strings, full vocabulary`, () => {
    expect(cases.length).toBeGreaterThan(900);
    for (const s of cases) expect(full.ours.encode(s), JSON.stringify(s.slice(0, 60))).toEqual(full.reference(s));
  });

  it(`${cases.length} strings, vocabulary cut to 2048 (long unmerged runs)`, () => {
    for (const s of cases) expect(cut.ours.encode(s), JSON.stringify(s.slice(0, 60))).toEqual(cut.reference(s));
  });

  it('the async encoder gives the same ids', async () => {
    for (const s of cases.filter((_, i) => i % 7 === 0)) expect(await full.ours.encodeAsync(s, { chunkChars: 5 })).toEqual(full.ours.encode(s));
  });
});

/** ~`n` characters of prose-like text: random words, spaces, punctuation, digits, newlines. */
function prose(n: number, seed: number): string {
  const u = rng(seed);
  const words = ['the', 'model', 'reads', 'a', 'screenshot', 'and', 'answers', 'Pixtral', 'WebGPU', 'über', 'naïve', '東京', 'données', '42', '3.14'];
  let s = '';
  while (s.length < n) {
    s += words[Math.floor(u() * words.length)]!;
    const r = u();
    s += r < 0.8 ? ' ' : r < 0.9 ? ', ' : r < 0.97 ? '. ' : '\n\n';
  }
  return s.slice(0, n);
}

describe('200,000 characters', () => {
  const n = 200_000;

  it('prose: the reference ids', () => {
    const text = prose(n, 1);
    expect(full.ours.encode(text)).toEqual(full.reference(text));
  });

  it('one run of one letter: the reference ids, derived from a run the reference encodes quickly', () => {
    // The reference takes minutes here (quadratic). On 2,000 'a' it gives 1,000 x the token "aa",
    // and no longer all-'a' token can form from "aa" pairs ("aaaa" is not in the vocabulary), so
    // 200,000 'a' must be 100,000 x "aa".
    const small = full.reference('a'.repeat(2000));
    expect(new Set(small).size).toBe(1);
    expect(full.ours.tokenToId('aaaa')).toBeUndefined();
    expect(full.ours.encode('a'.repeat(n))).toEqual(new Array<number>(n / 2).fill(small[0]!));
  });

  it('runs of every kind complete and round-trip, async equal to sync', async () => {
    for (const c of ['A', 'z', '-', '7', ' ', '\n', '\t \n', '中', '😀', 'é', '\u0301']) {
      const text = c.repeat(n / c.length) + 'x';
      const ids = full.ours.encode(text);
      expect(full.ours.decode(ids)).toBe(text);
      expect(ids.every((id) => id >= 1000 && id < full.ours.vocabSize)).toBe(true);
      expect(await full.ours.encodeAsync(text)).toEqual(ids);
    }
    const letters = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7919) % 26))).join('');
    expect(full.ours.decode(full.ours.encode(letters))).toBe(letters);
    expect(cut.ours.decode(cut.ours.encode(letters))).toBe(letters);
  });
});

describe('encodeAsync', () => {
  const text = prose(100_000, 2);

  it('yields to the event loop between chunks', async () => {
    let ranMeanwhile = false;
    setTimeout(() => (ranMeanwhile = true), 0);
    const ids = await full.ours.encodeAsync(text, { chunkChars: 1000 });
    expect(ranMeanwhile).toBe(true);
    expect(ids).toEqual(full.ours.encode(text));
  });

  it('stops on its signal with an AbortError that keeps the reason', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('user left')), 0);
    const err = await full.ours.encodeAsync(text, { signal: ac.signal, chunkChars: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).message).toContain('user left');
    await expect(full.ours.encodeAsync('x', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
  });
});
