/**
 * The remote engine (`createEngine({ baseURL, model })`, the official `openai` client inside)
 * against a second, independent OpenAI-compatible server: Hugging Face `transformers serve`
 * (transformers 5.x, CPU torch; installed by `.ci/run`) serving the embedded model's decoder from
 * its HF-layout checkpoint (`hf-serve/make_text_model.py`). Its answers are compared with the local
 * engine's on the same weights (the f32 conversion, in this process on Dawn): two implementations
 * of the model, two servers, one client code. Text only: transformers' Pixtral processor needs
 * torchvision, which has no CPU build in this machine's package index (README, "Remote").
 * Skipped where that Python environment is not installed, except in CI, which installs it.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, NetworkError } from '../../src/errors.js';
import { createEngine } from '../../src/openai/create.js';
import type { ChatEngine } from '../../src/openai/types.js';
import { loadServedModel } from '../../cli/serve/model.js';
import { repoRoot, sampleDataUrl } from './serve-process.js';
import { hfInstalled, hfVenv, startHfServe, stopHfServe, type HfServe } from './hf-serve/process.js';

/** The f32 conversion of the weights transformers loads (q4 would change some answers). */
const F32_MODEL = resolve(repoRoot, 'public/models/pixtral-tiny-screens-f32');
/** Text prompts: the model's three questions (asked without the image) and two it never saw. */
const PROMPTS = ['What color is the box?', 'What digit is shown?', 'Is the image wide, tall or square?', 'Hello', 'Describe the picture.'];
const MAX_TOKENS = 8;

let hf: HfServe;
let remote: ChatEngine;
const user = (text: string) => [{ role: 'user' as const, content: [{ type: 'text' as const, text }] }];

/**
 * Runs wherever the venv is there. Skipped (and said so) outside CI without it, or where `.ci/run`
 * tried to install it and the machine's package index could not (`PIXTRAL_HF_SERVE_UNAVAILABLE`
 * holds pip's reason); in CI with neither, the test runs and fails.
 */
const unavailable = process.env.PIXTRAL_HF_SERVE_UNAVAILABLE;
const skip = !hfInstalled && (!process.env.CI || !!unavailable);
if (skip) console.log(`[hf-serve] skipped: ${unavailable ? `.ci/run could not install transformers serve: ${unavailable}` : `no transformers serve in ${hfVenv} (.ci/run installs it)`}`);

describe.skipIf(skip)('remote engine against Hugging Face transformers serve', () => {
  beforeAll(async () => {
    hf = await startHfServe();
    remote = await createEngine({ baseURL: hf.baseURL, model: hf.model });
  });

  afterAll(async () => {
    await remote?.dispose();
    await stopHfServe(hf);
  });

  it('gives the local engine\'s answers as valid ChatCompletions, streaming and not', async () => {
    const local = await loadServedModel({ model: F32_MODEL, maxContext: 256, allowRemoteImages: false });
    const expected: string[] = [];
    try {
      for (const p of PROMPTS) {
        const r = await local.chat.completions.create({ messages: user(p), max_tokens: MAX_TOKENS, temperature: 0 });
        expected.push(r.choices[0]!.message.content ?? '');
      }
    } finally {
      await local.dispose();
    }
    console.log(`[hf-serve] local answers: ${JSON.stringify(expected)}`);
    expect(remote.info).toEqual({ backend: 'remote', model: hf.model, baseURL: hf.baseURL });
    for (const [i, p] of PROMPTS.entries()) {
      const r = await remote.chat.completions.create({ messages: user(p), max_tokens: MAX_TOKENS, temperature: 0 });
      expect(r.object).toBe('chat.completion');
      expect(typeof r.id).toBe('string');
      expect(r.choices).toHaveLength(1);
      expect(r.choices[0]!.message.role).toBe('assistant');
      expect(r.choices[0]!.message.content, p).toBe(expected[i]);
      expect(['stop', 'length']).toContain(r.choices[0]!.finish_reason);
      const u = r.usage!;
      expect(u.prompt_tokens).toBeGreaterThan(0);
      expect(u.completion_tokens).toBeGreaterThan(0);
      expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);

      let streamed = '';
      let last;
      for await (const c of await remote.chat.completions.create({ messages: user(p), max_tokens: MAX_TOKENS, temperature: 0, stream: true })) {
        expect(c.object).toBe('chat.completion.chunk');
        streamed += c.choices[0]?.delta.content ?? '';
        last = c;
      }
      expect(streamed, `${p} (stream)`).toBe(expected[i]);
      expect(last!.choices[0]!.finish_reason).toBe(r.choices[0]!.finish_reason);
    }
  });

  it('accepts an image_url part (a data: URL); the text-only model it serves answers from the text', async () => {
    const withImage = await remote.chat.completions.create({
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: sampleDataUrl('screen_02.png') } }, { type: 'text', text: PROMPTS[0]! }] }],
      max_tokens: MAX_TOKENS,
      temperature: 0,
    });
    const textOnly = await remote.chat.completions.create({ messages: user(PROMPTS[0]!), max_tokens: MAX_TOKENS, temperature: 0 });
    expect(withImage.choices[0]!.message.content).toBe(textOnly.choices[0]!.message.content);
  });

  it('turns its errors into NetworkErrors with the status and its own message; aborts', async () => {
    const other = await createEngine({ baseURL: hf.baseURL, model: 'someone/another-model' });
    const e = await other.chat.completions.create({ messages: user('hi'), max_tokens: 2 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NetworkError);
    expect((e as NetworkError).status).toBe(400);
    // FastAPI's {"detail": "..."} body: the message is the server's sentence, not the raw JSON.
    expect((e as NetworkError).message).toBe(`${hf.baseURL} answered HTTP 400: Server is pinned to '${hf.model}'; requested 'someone/another-model'.`);
    await other.dispose();
    const ac = new AbortController();
    ac.abort();
    await expect(remote.chat.completions.create({ messages: user('hi') }, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });
});
