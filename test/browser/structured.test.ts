/**
 * Structured output through the whole engine (`chat` with `responseFormat`): the grammar's mask is
 * applied to the logits on the GPU every step, so the answer always parses and validates (ajv, a
 * real JSON Schema validator). On the trained demo model a colour schema gives valid JSON every
 * time (its accuracy there is printed, with a floor: see the test); on a random-weight model a
 * schema with integers, arrays and nested objects must still give valid JSON on every try.
 */
import { afterAll, describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { Engine, type ChatMessage } from '../../src/engine/index.js';
import { FormatError } from '../../src/errors.js';

interface Sample {
  image: string;
  question: string;
  question_type: string;
  answer: string;
  reference_answer: string;
}

const SAMPLES = '/shared/models/pixtral-tiny-screens/samples';
const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'];
const colorSchema = { type: 'object', properties: { color: { enum: COLORS } }, required: ['color'] };
const engines: Engine[] = [];

async function load(url: string): Promise<Engine> {
  const e = new Engine();
  engines.push(e);
  await e.load({ url, maxContext: 256 });
  return e;
}

afterAll(async () => {
  for (const e of engines) await e.dispose();
});

describe('structured output (response_format)', () => {
  it('the demo model fills a colour schema: always valid, the right colour at least 5/12 (12/12 plain)', async () => {
    const engine = await load('/scratch/models/pixtral-tiny-screens-q4/');
    const samples = ((await (await fetch(`${SAMPLES}/questions.json`)).json()) as Sample[]).filter((s) => s.question_type === 'color');
    const validate = new Ajv().compile(colorSchema);
    let plainRight = 0;
    let jsonRight = 0;
    for (const s of samples) {
      const image = await (await fetch(`${SAMPLES}/${s.image}`)).blob();
      const msgs: ChatMessage[] = [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: s.question }] }];
      const plain = await engine.chat(msgs, { maxTokens: 4, temperature: 0 });
      const json = await engine.chat(msgs, {
        maxTokens: 24,
        temperature: 0,
        responseFormat: { type: 'json_schema', json_schema: { name: 'box', schema: colorSchema, strict: true } },
      });
      const value = JSON.parse(json.text) as { color: string };
      expect(validate(value), json.text).toBe(true);
      expect(json.stats.finishReason).toBe('eos');
      if (plain.text === s.answer) plainRight++;
      if (value.color === s.answer) jsonRight++;
    }
    console.log(`[structured] colour: plain ${plainRight}/${samples.length}, JSON schema ${jsonRight}/${samples.length}`);
    expect(samples.length).toBe(12);
    // The model was trained on bare one-word answers; in JSON mode its context holds `{"color":"`,
    // tokens it never saw, and its first value token there is chosen with small margins (README,
    // "Structured output": the per-sample table). Measured 6/12 with the compact layout (3/12 with
    // `{"color": "`), 12/12 plain, on lavapipe and SwiftShader alike; the bound guards the layout
    // choice, one answer below the measurement. A real model (Pixtral-12B) is needed for accuracy.
    expect(jsonRight).toBeGreaterThanOrEqual(5);
  });

  it('a random-weight model still gives valid JSON for a nested schema with integers, every time', async () => {
    const engine = await load('/scratch/models/pixtral-tiny-a-f32/');
    const schema = {
      type: 'object',
      properties: {
        id: { type: 'integer', minimum: 0, maximum: 99 },
        ok: { type: 'boolean' },
        tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 },
        nested: { type: 'object', properties: { n: { type: 'integer', minimum: -9, maximum: 9 }, z: { type: 'null' } }, required: ['n', 'z'] },
      },
      required: ['id', 'ok', 'tags', 'nested'],
    };
    const validate = new Ajv().compile(schema);
    for (let seed = 1; seed <= 4; seed++) {
      const r = await engine.chat([{ role: 'user', content: `record ${seed}` }], {
        maxTokens: 120,
        temperature: 1,
        seed,
        responseFormat: { type: 'json_schema', json_schema: { name: 'rec', schema } },
      });
      expect(r.stats.finishReason, r.text).toBe('eos');
      expect(validate(JSON.parse(r.text)), r.text).toBe(true);
      expect(r.stats.grammarMs).toBeGreaterThan(0);
    }
  });

  it('refuses an unsupported schema feature before any generation', async () => {
    const engine = engines[0] ?? (await load('/scratch/models/pixtral-tiny-screens-q4/'));
    const format = { type: 'json_schema' as const, json_schema: { name: 'x', schema: { type: 'string', not: { const: 'a' } } } };
    await expect(engine.chat([{ role: 'user', content: 'hi' }], { responseFormat: format })).rejects.toThrow(FormatError);
    // The model still answers afterwards.
    const r = await engine.chat([{ role: 'user', content: 'hi' }], { maxTokens: 2 });
    expect(r.stats.generatedTokens).toBeGreaterThan(0);
  });
});
