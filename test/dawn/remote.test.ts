/**
 * The remote backend (`createEngine({ baseURL, model, apiKey })`, the official `openai` client
 * inside) against `pixtral-webgpu serve` running the embedded model: the same answers as the
 * local engine (the same facade over the model in this process) on the sample screenshots,
 * streaming and not; the server's errors as `NetworkError`s keeping status and message; abort.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, NetworkError, RequestError } from '../../src/errors.js';
import { createEngine } from '../../src/openai/create.js';
import type { ChatEngine } from '../../src/openai/types.js';
import { loadServedModel } from '../../cli/serve/model.js';
import { EMBEDDED_MODEL, SAMPLES, sampleDataUrl, samples, startServe, stopServe, type ServeProcess } from './serve-process.js';

const KEY = 'remote-test-key';
let srv: ServeProcess;
let remote: ChatEngine;

// Two questions of each kind on the first screenshots: colour, digit and aspect answers differ.
const ASKS = samples().filter((s) => ['screen_00.png', 'screen_01.png', 'screen_02.png', 'screen_03.png'].includes(s.image));

/** Runs for its whole budget: the grammar never lets the string end (see serve.test.ts). */
const LONG = {
  messages: [{ role: 'user' as const, content: 'Tell me everything.' }],
  max_tokens: 120,
  response_format: { type: 'json_schema' as const, json_schema: { name: 'long', schema: { type: 'string', minLength: 1000 } } },
};

const ask = (image: string, question: string) => [
  { role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: sampleDataUrl(image) } }, { type: 'text' as const, text: question }] },
];

/** The local engine: the same facade over the model in this process (as `serve` loads it). */
async function localAnswers(): Promise<string[]> {
  const local = await loadServedModel({ model: EMBEDDED_MODEL, maxContext: 512, allowRemoteImages: false });
  try {
    const out: string[] = [];
    for (const s of ASKS) {
      const r = await local.chat.completions.create({ messages: ask(s.image, s.question), max_tokens: 4, temperature: 0 });
      out.push(r.choices[0]!.message.content ?? '');
    }
    return out;
  } finally {
    await local.dispose();
  }
}

beforeAll(async () => {
  srv = await startServe(['--api-key', KEY, '--max-context', '512', '--allow-remote-images']);
  remote = await createEngine({ baseURL: srv.baseURL, model: 'pixtral-tiny-screens', apiKey: KEY });
});

afterAll(async () => {
  await remote?.dispose();
  await stopServe(srv);
});

describe('remote engine against pixtral-webgpu serve', () => {
  it('gives the local engine\'s answers on the sample screenshots, streaming and not', async () => {
    const local = await localAnswers();
    expect(remote.info).toEqual({ backend: 'remote', model: 'pixtral-tiny-screens', baseURL: srv.baseURL });
    for (const [i, s] of ASKS.entries()) {
      const r = await remote.chat.completions.create({ messages: ask(s.image, s.question), max_tokens: 4, temperature: 0 });
      expect(r.choices[0]!.message.content, `${s.image} ${s.question}`).toBe(local[i]);
      expect(r.usage!.completion_tokens).toBeGreaterThan(0);
      let streamed = '';
      let last;
      for await (const c of await remote.chat.completions.create({ messages: ask(s.image, s.question), max_tokens: 4, temperature: 0, stream: true })) {
        streamed += c.choices[0]?.delta.content ?? '';
        last = c;
      }
      expect(streamed, `${s.image} ${s.question} (stream)`).toBe(local[i]);
      expect(last!.usage).toEqual(r.usage);
    }
    // The colour answers are also the float64 reference's.
    for (const [i, s] of ASKS.entries()) if (s.question_type === 'color') expect(local[i]).toBe(s.reference_answer);
  });

  it('turns the server\'s errors into NetworkErrors with the status and the server\'s message', async () => {
    const n = await remote.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], n: 2 }).catch((e: unknown) => e);
    expect(n).toBeInstanceOf(NetworkError);
    expect((n as NetworkError).status).toBe(400);
    expect((n as NetworkError).message).toMatch(/answered HTTP 400: n: n = 2 \(several choices\) is not supported/);
    const wrong = await createEngine({ baseURL: srv.baseURL, model: 'x', apiKey: 'wrong' });
    const auth = await wrong.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(NetworkError);
    expect((auth as NetworkError).status).toBe(401);
    await expect(createEngine({ baseURL: 'ftp://x', model: 'm' })).rejects.toBeInstanceOf(RequestError);
  });

  it('sends http(s) image URLs as given; serve --allow-remote-images fetches them', async () => {
    const files = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.end(readFileSync(resolve(SAMPLES, basename(req.url ?? ''))));
    });
    await new Promise<void>((ok) => files.listen(0, '127.0.0.1', ok));
    try {
      const url = `http://127.0.0.1:${(files.address() as AddressInfo).port}/screen_02.png`;
      const r = await remote.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'What color is the box?' }] }], max_tokens: 4 });
      expect(r.choices[0]!.message.content).toBe('green');
    } finally {
      files.close();
    }
  });

  it('aborts through the signal', async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await remote.chat.completions.create({ messages: ask('screen_02.png', 'What color is the box?') }, { signal: ac.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortError);
    const ac2 = new AbortController();
    const stream = await remote.chat.completions.create({ ...LONG, stream: true }, { signal: ac2.signal });
    const err = await (async () => {
      for await (const c of stream) if (c.choices[0]?.delta.content) ac2.abort();
    })().catch((x: unknown) => x);
    expect(err).toBeInstanceOf(AbortError);
  });
});
