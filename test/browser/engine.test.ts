/**
 * The engine end to end on the trained demo model (pixtral-tiny-screens, converted f32 by the
 * project's converter, served over HTTP, cached in IndexedDB): PNG bytes -> decode ->
 * preprocess -> vision -> projector -> decoder -> GPU sampling -> detokenisation, checked
 * against the float64 reference's answers in samples/questions.json. Also: KV reuse across
 * turns, seeds, stop strings, abort, context errors, and the golden ids through generate().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type ChatMessage } from '../../src/engine/index.js';
import { AbortError, ContextLengthError } from '../../src/errors.js';
import { loadCase } from '../golden/cases.js';

interface Sample {
  image: string;
  question: string;
  question_type: string;
  reference_answer: string;
  reference_tokens: number[];
  prompt_ids: number[];
}

const SAMPLES = '/shared/models/pixtral-tiny-screens/samples';
let engine: Engine;
let samples: Sample[];

async function png(name: string): Promise<Blob> {
  const r = await fetch(`${SAMPLES}/${name}`);
  return r.blob();
}

function ask(image: Blob, question: string): ChatMessage[] {
  return [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: question }] }];
}

async function answer(msgs: ChatMessage[], opts = {}) {
  let text = '';
  const r = await engine.chat(msgs, { maxTokens: 4, ...opts }, (d) => (text += d));
  expect(r.text).toBe(text); // in-thread, every delta arrives before the result
  return { text, stats: r.stats };
}

beforeAll(async () => {
  engine = new Engine();
  const info = await engine.load({ url: '/scratch/models/pixtral-tiny-screens-f32/', maxContext: 256 });
  expect(info.maxContext).toBe(256);
  expect(info.dtype).toBe('f32');
  samples = await (await fetch(`${SAMPLES}/questions.json`)).json();
});

afterAll(() => engine?.dispose());

describe('engine on the demo model (f32)', () => {
  it('builds the reference prompt ids from the question text', async () => {
    for (const s of samples.slice(0, 3)) {
      const q = await engine.tokenize(s.question);
      expect(s.prompt_ids.slice(s.prompt_ids.length - 1 - q.length, -1)).toEqual(q);
    }
  });

  it('answers one sample of each question type as the reference does', async () => {
    for (const s of samples.slice(0, 3)) {
      const { text, stats } = await answer(ask(await png(s.image), s.question));
      expect(text).toBe(s.reference_answer);
      expect(stats.promptTokens).toBe(s.prompt_ids.length);
      expect(stats.finishReason).toBe('eos');
      expect(stats.generatedTokens).toBe(s.reference_tokens.length);
    }
  });

  it('reuses the KV cache for a follow-up question: no image encode, earlier turn not prefilled', async () => {
    const s = samples[3]!; // screen_01 colour
    const img = await png(s.image);
    await engine.reset(); // whatever earlier tests left in the KV cache
    const first = await answer(ask(img, s.question));
    expect(first.stats.imagesEncoded).toBe(1);
    const follow: ChatMessage[] = [...ask(img, s.question), { role: 'assistant', content: first.text }, { role: 'user', content: 'Is the image wide, tall or square?' }];
    const second = await answer(follow);
    expect(second.stats.imagesEncoded).toBe(0);
    // Everything up to the end of the first answer comes from the cache.
    expect(second.stats.reusedTokens).toBeGreaterThanOrEqual(first.stats.promptTokens + first.stats.generatedTokens - 1);
    expect(second.stats.promptTokens - second.stats.reusedTokens).toBeLessThan(20);
  });

  it('same seed, same output; stop strings cut the text', async () => {
    const s = samples[6]!;
    const img = await png(s.image);
    const a = await answer(ask(img, s.question), { temperature: 1.5, topK: 40, seed: 7, maxTokens: 6 });
    const b = await answer(ask(img, s.question), { temperature: 1.5, topK: 40, seed: 7, maxTokens: 6 });
    expect(b.text).toBe(a.text);
    const full = await answer(ask(img, 'What color is the box?'));
    expect(full.text.length).toBeGreaterThan(1);
    const cut = await answer(ask(img, 'What color is the box?'), { stop: [full.text.slice(1, 2)] });
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(full.text.slice(1, 2))));
    expect(cut.stats.finishReason).toBe('stop');
  });

  it('refuses a prompt over the context budget before any GPU work', async () => {
    const long = 'word '.repeat(400);
    await expect(answer([{ role: 'user', content: long }])).rejects.toBeInstanceOf(ContextLengthError);
  });

  it('stops within one decode step when aborted', async () => {
    const s = samples[0]!;
    const ctl = new AbortController();
    let deltas = 0;
    const { stats } = await engine.chat(ask(await png(s.image), s.question), { maxTokens: 50, temperature: 1, seed: 1, signal: ctl.signal }, () => {
      deltas++;
      ctl.abort();
    });
    expect(deltas).toBe(1);
    expect(stats.finishReason).toBe('abort');
    const pre = new AbortController();
    pre.abort();
    await expect(engine.chat(ask(await png(s.image), s.question), { signal: pre.signal })).rejects.toBeInstanceOf(AbortError);
  });
});

describe('engine.generate on the golden fixture', () => {
  it('reproduces the greedy tokens of one_image_wide from ids and pixels', async () => {
    const e = new Engine();
    try {
      await e.load({ url: '/scratch/models/pixtral-tiny-a-f32/', maxContext: 64 });
      const c = await loadCase('pixtral-tiny-a', 'one_image_wide');
      const px = c.inputs['pixel_values.0']!;
      const [, height, width] = px.shape as [number, number, number];
      const r = await e.generate({
        inputIds: c.json.input_ids,
        images: [{ pixels: px.data as Float32Array, height, width }],
        maxNewTokens: 8,
        temperature: 0,
        returnLogits: true,
      });
      // generate() stops at EOS; the golden rule does not, but these 8 tokens contain none.
      expect(r.tokenIds).toEqual(c.json.greedy_tokens);
      expect(r.logits!.length).toBe(c.json.seq_len * 2048);
    } finally {
      await e.dispose();
    }
  });
});
