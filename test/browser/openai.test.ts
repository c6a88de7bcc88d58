/**
 * `createEngine` + `engine.chat.completions.create` on the embedded q4 demo model (converted by
 * the global setup), in Chromium on the real WebGPU adapter: answers on the sample screenshots
 * (data: URL and image-object parts) equal the engine's own `model.chat` answers and, for the
 * colour question, the float64 reference answers; streaming chunks; typed refusals before any
 * work; structured output through the engine's grammar; abort; dispose; the remote backend's image encoding; and the fallback when WebGPU is
 * missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, ContextLengthError, DisposedError, ImageError, NetworkError, RequestError, createEngine, type ChatEngine } from '../../src/index.js';
import { imageToDataUrl } from '../../src/remote/image-url.js';
import { preprocessImage } from '../../src/image/preprocess.js';
import type { ChatCompletionChunk } from '../../src/openai/types.js';

const SAMPLES = '/shared/models/pixtral-tiny-screens/samples';
// The embedded demo model as committed under public/ (served at /models/ like the demo's assets).
const MODEL = '/models/pixtral-tiny-screens-q4/';
const COLOR = 'What color is the box?';

interface Sample { image: string; question: string; reference_answer: string }

async function bytesOf(name: string): Promise<Blob> {
  return (await fetch(`${SAMPLES}/${name}`)).blob();
}

async function dataUrl(blob: Blob): Promise<string> {
  const b = new Uint8Array(await blob.arrayBuffer());
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return `data:${blob.type || 'image/png'};base64,${btoa(s)}`;
}

const ask = (url: string, question = COLOR) => [
  { role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url } }, { type: 'text' as const, text: question }] },
];

let engine: ChatEngine;
let samples: Sample[];

beforeAll(async () => {
  engine = await createEngine({ url: MODEL, maxContext: 128, dtype: 'q4' });
  samples = ((await (await fetch(`${SAMPLES}/questions.json`)).json()) as Sample[]).filter((s) => s.question === COLOR).slice(0, 4);
});

afterAll(async () => {
  await engine?.dispose();
});

describe('engine.chat.completions.create (local)', () => {
  it('reports the model, dtype, context and adapter', () => {
    expect(engine.info.backend).toBe('local');
    expect(engine.info.dtype).toBe('q4');
    expect(engine.info.context).toBe(128);
    expect(engine.info.model).toBe(engine.info.local!.name);
    expect(engine.info.adapter).toBeTruthy();
  });

  it('answers the sample screenshots like the engine itself and the float64 reference (colour)', async () => {
    for (const s of samples) {
      const blob = await bytesOf(s.image);
      const r = await engine.chat.completions.create({ model: 'any', messages: ask(await dataUrl(blob)), max_tokens: 4, temperature: 0 });
      const direct = await (engine.model as unknown as { complete: (m: unknown, o: unknown) => Promise<{ text: string }> }).complete(
        [{ role: 'user', content: [{ type: 'image', image: blob }, { type: 'text', text: COLOR }] }],
        { maxTokens: 4 },
      );
      expect(r.object).toBe('chat.completion');
      expect(r.choices[0]!.message.content, s.image).toBe(direct.text);
      expect(r.choices[0]!.message.content, s.image).toBe(s.reference_answer);
      expect(r.choices[0]!.finish_reason).toBe('stop');
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
      expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
      // The prompt holds the image's token grid plus the question and the instruct tokens.
      expect(r.usage!.prompt_tokens).toBeGreaterThan(12);
    }
  });

  it('streams chunks whose text equals the non-streamed answer; the last carries finish_reason and usage', async () => {
    const url = await dataUrl(await bytesOf('screen_02.png'));
    const whole = await engine.chat.completions.create({ messages: ask(url), max_tokens: 4 });
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await engine.chat.completions.create({ messages: ask(url), max_tokens: 4, stream: true })) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id)).toBe(true);
    expect(chunks.map((c) => c.choices[0]!.delta.content ?? '').join('')).toBe(whole.choices[0]!.message.content);
    const last = chunks.at(-1)!;
    expect(last.choices[0]!.finish_reason).toBe('stop');
    expect(last.usage).toEqual(whole.usage);
    expect(chunks.slice(0, -1).every((c) => c.choices[0]!.finish_reason === null && !c.usage)).toBe(true);
  });

  it('fetches http(s) image URLs', async () => {
    const url = new URL(`${SAMPLES}/screen_02.png`, location.href).href;
    const r = await engine.chat.completions.create({ messages: ask(url), max_tokens: 4 });
    expect(r.choices[0]!.message.content).toBe('green');
  });

  it('takes image objects as the extension part and stops at max_tokens with "length"', async () => {
    const blob = await bytesOf('screen_01.png');
    const bitmap = await createImageBitmap(blob);
    const r = await engine.chat.completions.create({
      messages: [{ role: 'user', content: [{ type: 'image', image: bitmap }, { type: 'text', text: COLOR }] }],
      max_completion_tokens: 1,
    });
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage!.completion_tokens).toBe(1);
    expect('red'.startsWith(r.choices[0]!.message.content!)).toBe(true);
  });

  it('constrains the answer with response_format json_schema (the grammar engine)', async () => {
    const schema = { type: 'object', properties: { color: { enum: ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] } }, required: ['color'] };
    const r = await engine.chat.completions.create({
      // screen_03: one of the 6 of 12 samples the embedded model gets right in JSON mode (README).
      messages: ask(await dataUrl(await bytesOf('screen_03.png'))),
      response_format: { type: 'json_schema', json_schema: { name: 'box', schema, strict: true } },
      max_tokens: 24,
    });
    const parsed = JSON.parse(r.choices[0]!.message.content!) as { color: string };
    expect(schema.properties.color.enum).toContain(parsed.color);
    expect(parsed.color).toBe('green');
  });

  it('refuses bad requests with typed errors naming the culprit, before any generation', async () => {
    const url = await dataUrl(await bytesOf('screen_02.png'));
    const fails = (p: Promise<unknown>) => p.then(() => { throw new Error('accepted'); }, (e: unknown) => e as Error & { param?: string });
    const n = await fails(engine.chat.completions.create({ messages: ask(url), n: 2 }));
    expect(n).toBeInstanceOf(RequestError);
    expect(n.param).toBe('n');
    const rf = await fails(engine.chat.completions.create({ messages: ask(url), response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', format: 'email' } } } }));
    expect(rf).toBeInstanceOf(RequestError);
    expect(rf.param).toBe('response_format');
    const img = await fails(engine.chat.completions.create({ messages: ask(`data:image/png;base64,${btoa('garbage bytes, no image')}`) }));
    expect(img).toBeInstanceOf(ImageError);
    expect(img.message).toMatch(/^messages\[0\]\.content\[0\]\.image_url\.url/);
    // A PNG header on truncated data passes the probe; the engine's decode error still names the part.
    const bytes = new Uint8Array(await (await bytesOf('screen_02.png')).arrayBuffer()).slice(0, 60);
    const truncated = await fails(engine.chat.completions.create({ messages: ask(await dataUrl(new Blob([bytes], { type: 'image/png' }))), stream: true }));
    expect(truncated).toBeInstanceOf(ImageError);
    expect(truncated.message).toMatch(/^messages\[0\]\.content\[0\]\.image_url\.url/);
    const long = await fails(engine.chat.completions.create({ messages: [{ role: 'user', content: 'x '.repeat(300) }], stream: true }));
    expect(long).toBeInstanceOf(ContextLengthError);
    expect((long as ContextLengthError).maxTokens).toBe(128);
  });

  it('aborts through the signal, before and during a stream', async () => {
    const url = await dataUrl(await bytesOf('screen_02.png'));
    const before = await engine.chat.completions.create({ messages: ask(url) }, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(before).toBeInstanceOf(AbortError);
    const ac = new AbortController();
    // The schema asks for a string longer than the budget, so the grammar never lets the answer
    // end on its own: only the abort can stop it before max_tokens.
    const long = { type: 'json_schema' as const, json_schema: { name: 'long', schema: { type: 'string', minLength: 1000 } } };
    const stream = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 60, response_format: long, stream: true }, { signal: ac.signal });
    let chunks = 0;
    const err = await (async () => {
      for await (const c of stream) {
        chunks++;
        if (c.choices[0]?.delta.content) ac.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(chunks).toBeLessThan(60);
    // The engine is usable right after.
    const r = await engine.chat.completions.create({ messages: ask(url), max_tokens: 4 });
    expect(r.choices[0]!.message.content).toBe('green');
  });
});

describe('remote image encoding', () => {
  it('sends the pixels the local engine would use: resized to the model size, PNG, identical after preprocessing', async () => {
    const blob = await bytesOf('screen_00.png'); // 222 x 34 -> 128 x 20 -> 128 x 32 at 16-px tokens
    const url = await imageToDataUrl(blob, { longestEdge: 128, tokenPx: 16 });
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    const sent = await (await fetch(url)).blob();
    const bitmap = await createImageBitmap(sent);
    expect([bitmap.width, bitmap.height]).toEqual([128, 32]);
    const opts = { longestEdge: 128, patchSize: 16 };
    const a = await preprocessImage(blob, opts);
    const b = await preprocessImage(sent, opts);
    expect([b.width, b.height]).toEqual([a.width, a.height]);
    // Bit-exact: the second resize is to the same size, where Pillow's bicubic is the identity.
    expect(b.pixels).toEqual(a.pixels);
    // Over the JPEG threshold it switches to JPEG.
    expect((await imageToDataUrl(blob, { longestEdge: 128, tokenPx: 16, jpegOverBytes: 10 })).startsWith('data:image/jpeg;base64,')).toBe(true);
  });
});

describe('createEngine fallback', () => {
  it('uses the remote engine and says why when WebGPU is missing', async () => {
    const proto = Object.getPrototypeOf(navigator) as object;
    const desc = Object.getOwnPropertyDescriptor(proto, 'gpu')!;
    Object.defineProperty(proto, 'gpu', { configurable: true, get: () => undefined });
    let e: ChatEngine;
    try {
      e = await createEngine({ url: MODEL, fallback: { baseURL: 'http://127.0.0.1:9/v1', model: 'mistralai/Pixtral-12B-2409', retries: 0 } });
    } finally {
      Object.defineProperty(proto, 'gpu', desc);
    }
    expect(e.info.backend).toBe('remote');
    expect(e.info.model).toBe('mistralai/Pixtral-12B-2409');
    expect(e.info.fallbackReason).toMatch(/WebGPU is not available/);
    // Nothing listens on port 9 (discard): a connection failure is a NetworkError without status.
    const err = await e.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).status).toBeUndefined();
  });

  it('is disposed with the model', async () => {
    const e = await createEngine({ url: MODEL, maxContext: 64 });
    await e.dispose();
    const err = await e.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DisposedError);
  });
});
