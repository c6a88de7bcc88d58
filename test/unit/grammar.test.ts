/**
 * Structured output at the grammar level, in Node, with the real 131k Tekken vocabulary: a
 * response_format compiles once, its masks admit exactly the tokens that keep the output valid,
 * and any path through the masks ends in JSON that a real JSON Schema validator (ajv) accepts.
 * The GPU side (the mask applied to the logits) is tested in test/kernels/logit-mask.test.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { FormatError } from '../../src/errors.js';
import { checkResponseFormat } from '../../src/index.js';
import { loadTokenizer } from '../../src/text/tokenizer.js';
import { Grammars, type TokenConstraint } from '../../src/grammar/constraint.js';
import { grammarSpec } from '../../src/grammar/response-format.js';
import { byteLevelVocab } from '../../src/grammar/vocab.js';
import { sharedDir } from '../fixture-server.js';
import { rng } from '../helpers/random.js';

const tok = loadTokenizer(readFileSync(resolve(sharedDir, 'fixtures/tokenizers/tekken-240718/tekken.json')));
const EOS = tok.specialTokens['</s>']!;
const grammars = new Grammars(tok, EOS);

const allowed = (mask: Uint32Array, id: number) => ((mask[id >> 5]! >>> (id & 31)) & 1) === 1;

/** Follows the masks with a seeded random choice among the allowed tokens, until EOS. */
async function randomPath(c: TokenConstraint, seed: number, maxSteps: number): Promise<number[]> {
  const u = rng(seed);
  const ids: number[] = [];
  for (let step = 0; step < maxSteps && !c.done; step++) {
    const mask = await c.mask();
    const ok: number[] = [];
    for (let id = 0; id < tok.vocabSize; id++) if (allowed(mask, id)) ok.push(id);
    expect(ok.length).toBeGreaterThan(0);
    // Half the time the shortest allowed token: random walks through free text are long.
    const pick = u() < 0.5 ? ok.reduce((a, b) => (tok.idToBytes(b).length < tok.idToBytes(a).length ? b : a)) : ok[Math.floor(u() * ok.length)]!;
    c.accept(pick);
    ids.push(pick);
  }
  return ids;
}

describe('grammar-constrained decoding (xgrammar over Tekken)', () => {
  it('maps every token to its exact bytes, control tokens to nothing', () => {
    const v = byteLevelVocab(tok);
    expect(v.length).toBe(tok.vocabSize);
    expect(v[tok.encode('\n')[0]!]).toBe(''); // a control byte: never valid in compact JSON
    expect(v[EOS]).toBe('');
    expect(v[tok.specialTokens['[INST]']!]).toBe('');
    const id = tok.encode(' {"')[0]!;
    expect(v[id]).toBe('Ġ{"'.slice(0, v[id]!.length)); // the space byte is GPT-2's 'Ġ'
  });

  it('accepts the tokenization of a valid answer and ends with EOS', async () => {
    const schema = { type: 'object', properties: { color: { enum: ['red', 'green', 'blue'] } }, required: ['color'] };
    const c = await grammars.start(grammarSpec({ type: 'json_schema', json_schema: { name: 'c', schema } })!);
    for (const id of tok.encode('{"color":')) {
      expect(allowed(await c.mask(), id)).toBe(true);
      c.accept(id);
    }
    // Compact layout: no whitespace between tokens (the space-led ' "' is refused).
    const afterColon = await c.mask();
    expect(allowed(afterColon, tok.encode(' "')[0]!)).toBe(false);
    expect(allowed(afterColon, tok.encode(' ')[0]!)).toBe(false);
    for (const id of tok.encode('"green"}')) {
      expect(allowed(await c.mask(), id)).toBe(true);
      c.accept(id);
    }
    const last = await c.mask();
    expect(allowed(last, EOS)).toBe(true);
    // Nothing but EOS once the object is closed.
    let others = 0;
    for (let id = 0; id < tok.vocabSize; id++) if (id !== EOS && allowed(last, id)) others++;
    expect(others).toBe(0);
    c.accept(EOS);
    expect(c.done).toBe(true);
    c.dispose();
  });

  it('never admits a control token inside a string, nor a value outside an enum', async () => {
    const schema = { type: 'object', properties: { note: { type: 'string' }, color: { enum: ['red', 'blue'] } }, required: ['note', 'color'] };
    const c = await grammars.start(grammarSpec({ type: 'json_schema', json_schema: { name: 'n', schema } })!);
    for (const id of tok.encode('{"note":"a')) c.accept(id);
    const inString = await c.mask();
    for (const name of ['[INST]', '[/INST]', '[IMG]', '<s>', '</s>']) expect(allowed(inString, tok.specialTokens[name]!)).toBe(false);
    for (const id of tok.encode('","color":"')) c.accept(id);
    const m = await c.mask();
    expect(allowed(m, tok.encode('red')[0]!)).toBe(true);
    expect(allowed(m, tok.encode('green')[0]!)).toBe(false);
    c.dispose();
  });

  it('every random path through a nested schema with integers is valid JSON that validates', async () => {
    const schema = {
      type: 'object',
      properties: {
        id: { type: 'integer', minimum: 0, maximum: 999 },
        name: { type: 'string', maxLength: 6 },
        ok: { type: 'boolean' },
        tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
        nested: { type: 'object', properties: { n: { type: 'number' }, z: { type: 'null' } }, required: ['n', 'z'] },
      },
      required: ['id', 'name', 'ok', 'tags', 'nested'],
    };
    const validate = new Ajv().compile(schema);
    const spec = grammarSpec({ type: 'json_schema', json_schema: { name: 'x', schema } })!;
    // JSON.stringify's layout, nested arrays and objects included, is a path through the masks.
    const exact = await grammars.start(spec);
    for (const id of tok.encode(JSON.stringify({ id: 7, name: 'ab', ok: true, tags: ['a', 'c'], nested: { n: -1.5, z: null } }))) {
      expect(allowed(await exact.mask(), id)).toBe(true);
      exact.accept(id);
    }
    expect(allowed(await exact.mask(), EOS)).toBe(true);
    exact.dispose();
    for (let seed = 1; seed <= 6; seed++) {
      const c = await grammars.start(spec);
      const ids = await randomPath(c, seed, 400);
      expect(c.done, `seed ${seed} did not finish`).toBe(true);
      expect(ids.at(-1)).toBe(EOS);
      const text = tok.decode(ids);
      const value = JSON.parse(text) as unknown;
      expect(validate(value), `${text}: ${JSON.stringify(validate.errors)}`).toBe(true);
      c.dispose();
    }
  });

  it('json_object admits any object and nothing else', async () => {
    const c = await grammars.start(grammarSpec({ type: 'json_object' })!);
    const first = await c.mask();
    expect(allowed(first, tok.encode('[')[0]!)).toBe(false);
    expect(allowed(first, tok.encode('"')[0]!)).toBe(false);
    for (const id of tok.encode('{"a": [1, {"b": null}], "c": "x"}')) {
      expect(allowed(await c.mask(), id)).toBe(true);
      c.accept(id);
    }
    expect(allowed(await c.mask(), EOS)).toBe(true);
    c.dispose();
  });

  it('refuses unsupported schema features and formats before any generation', () => {
    const bad = (schema: Record<string, unknown>) => () => grammarSpec({ type: 'json_schema', json_schema: { name: 'b', schema } });
    expect(bad({ type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } })).toThrow(/#\/properties\/a: "not" is not supported/);
    expect(bad({ if: {}, then: {} })).toThrow(FormatError);
    expect(bad({ type: 'decimal' })).toThrow(/unknown type "decimal"/);
    expect(() => grammarSpec({ type: 'xml' } as never)).toThrow(/response_format.type "xml"/);
    expect(grammarSpec({ type: 'text' })).toBeNull();
    expect(grammarSpec(undefined)).toBeNull();
  });

  it('the package root checks a schema the same way, without loading a model', () => {
    const schema = { type: 'object', properties: { total: { type: 'number', multipleOf: 0.01 } } };
    expect(() => checkResponseFormat({ type: 'json_schema', json_schema: { schema } })).toThrow(FormatError);
    expect(() => checkResponseFormat({ type: 'json_schema', json_schema: { schema } })).toThrow(/#\/properties\/total: "multipleOf" is not supported/);
    expect(() => checkResponseFormat({ type: 'json_schema', json_schema: { schema: { type: 'object', properties: { a: { enum: ['x'] } } } } })).not.toThrow();
  });
});
