/**
 * `pixtral-webgpu serve` as a real child process on 127.0.0.1 (embedded q4 model, Dawn on the
 * adapter the environment gives: lavapipe in CI), driven by the official `openai` client
 * (streaming and not, images as data: URLs) and by raw `fetch` for the error cases: statuses,
 * OpenAI-shaped error bodies naming the culprit, auth, CORS, the bounded queue, a client
 * disconnect aborting its generation, and SIGTERM finishing in-flight work then exiting 0.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleDataUrl, samples, startServe, stopServe, type ServeProcess } from './serve-process.js';

const KEY = 'test-key-1234';
const ORIGIN = 'http://page.test';
const COLOR = 'What color is the box?';
let srv: ServeProcess;
let client: OpenAI;

const ask = (image: string, question = COLOR) => [
  { role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: sampleDataUrl(image) } }, { type: 'text' as const, text: question }] },
];

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${srv.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function apiError(r: Response): Promise<{ status: number; message: string; type: string; param: string | null; code: string | null }> {
  const j = (await r.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(j)).toEqual(['error']);
  return { status: r.status, ...j.error };
}

/**
 * A request that runs for its whole token budget: the schema asks for a JSON string longer than
 * the budget can hold, so the grammar never lets the model end it (checked in the test).
 */
const LONG = {
  messages: ask('screen_02.png', 'Tell me everything.'),
  max_tokens: 120,
  response_format: { type: 'json_schema' as const, json_schema: { name: 'long', schema: { type: 'string', minLength: 1000 } } },
};

beforeAll(async () => {
  srv = await startServe(['--api-key', KEY, '--cors', ORIGIN, '--queue', '1', '--max-body-mb', '1', '--max-context', '512', '--grace-seconds', '30']);
  client = new OpenAI({ baseURL: srv.baseURL, apiKey: KEY });
});

afterAll(async () => {
  await stopServe(srv);
});

describe('serve: the openai client', () => {
  it('answers the sample screenshots (data: URLs) without streaming, with usage', async () => {
    const colour = samples().filter((s) => s.question === COLOR).slice(0, 4);
    for (const s of colour) {
      const r = await client.chat.completions.create({ model: 'pixtral-tiny-screens', messages: ask(s.image), max_tokens: 4, temperature: 0 });
      expect(r.object).toBe('chat.completion');
      expect(r.choices[0]!.message.content, s.image).toBe(s.reference_answer);
      expect(r.choices[0]!.finish_reason).toBe('stop');
      expect(r.usage!.prompt_tokens).toBeGreaterThan(12);
      expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
    }
  });

  it('streams the same answer; the last chunk carries finish_reason and usage', async () => {
    const whole = await client.chat.completions.create({ messages: ask('screen_01.png'), max_tokens: 4, model: 'm' });
    const stream = await client.chat.completions.create({ messages: ask('screen_01.png'), max_tokens: 4, model: 'm', stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe(whole.choices[0]!.message.content);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  });

  it('sends SSE data: events ending with data: [DONE]', async () => {
    const r = await post({ messages: ask('screen_05.png'), max_tokens: 4, stream: true });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await r.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.every((e) => e.startsWith('data: '))).toBe(true);
    expect(events.at(-1)).toBe('data: [DONE]');
    const last = JSON.parse(events.at(-2)!.slice(6)) as { choices: { finish_reason: string }[]; usage: unknown };
    expect(last.choices[0]!.finish_reason).toBe('stop');
    expect(last.usage).toBeTruthy();
  });

  it('lists the model, answers /health without a key, requires the key on /v1', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([expect.any(String)]);
    const health = await fetch(srv.baseURL.replace(/\/v1$/, '/health'));
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
    const noKey = await fetch(`${srv.baseURL}/models`);
    expect(noKey.status).toBe(401);
    const wrong = await post({ messages: [{ role: 'user', content: 'hi' }] }, { Authorization: 'Bearer nope' });
    expect((await apiError(wrong)).code).toBe('invalid_api_key');
    const bad = new OpenAI({ baseURL: srv.baseURL, apiKey: 'nope', maxRetries: 0 });
    await expect(bad.models.list()).rejects.toMatchObject({ status: 401 });
  });

  it('answers CORS preflights for the configured origin', async () => {
    const pre = await fetch(`${srv.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,x-stainless-os' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(pre.headers.get('access-control-allow-headers')).toContain('x-stainless-os');
    const r = await fetch(`${srv.baseURL}/models`, { headers: { Origin: ORIGIN, Authorization: `Bearer ${KEY}` } });
    expect(r.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });
});

describe('serve: bad input gets an OpenAI-shaped error and the right status', () => {
  it('400 for malformed JSON, wrong types and unsupported parameters; unknown fields are ignored', async () => {
    const malformed = await apiError(await post('{"messages": ['));
    expect(malformed).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'invalid_json' });
    const type = await apiError(await post({ messages: [{ role: 'user', content: 'hi' }], max_tokens: '5' }));
    expect(type).toMatchObject({ status: 400, param: 'max_tokens' });
    const n = await apiError(await post({ messages: [{ role: 'user', content: 'hi' }], n: 2 }));
    expect(n).toMatchObject({ status: 400, param: 'n' });
    const unknown = await post({ messages: ask('screen_02.png'), max_tokens: 4, some_new_field: { a: 1 }, user: 'x' });
    expect(unknown.status).toBe(200);
    expect(((await unknown.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe('green');
  });

  it('400 naming the image part that does not decode, and for http(s) images without --allow-remote-images', async () => {
    const garbage = `data:image/png;base64,${Buffer.from('this is not a picture').toString('base64')}`;
    const body = { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: garbage } }] }] };
    const e = await apiError(await post(body));
    expect(e).toMatchObject({ status: 400, code: 'invalid_image', param: 'messages[0].content[1].image_url.url' });
    const remote = await apiError(await post({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] }));
    expect(remote).toMatchObject({ status: 400, param: 'messages[0].content[0].image_url.url' });
    expect(remote.message).toMatch(/not allowed/);
  });

  it('400 with the numbers for a prompt over the context, 413 over the body limit', async () => {
    const long = await apiError(await post({ messages: [{ role: 'user', content: 'word '.repeat(700) }] }));
    expect(long).toMatchObject({ status: 400, code: 'context_length_exceeded' });
    expect(long.message).toMatch(/prompt needs \d+ tokens but the context budget is 512/);
    const big = await post({ messages: [{ role: 'user', content: 'x'.repeat(1.5 * 2 ** 20) }] });
    expect((await apiError(big)).status).toBe(413);
  });

  it('404 for an unknown route, 405 for a wrong method', async () => {
    expect((await apiError(await fetch(`${srv.baseURL}/completions`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}` } }))).status).toBe(404);
    const r = await fetch(`${srv.baseURL}/chat/completions`, { headers: { Authorization: `Bearer ${KEY}` } });
    expect((await apiError(r)).status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
  });

  it('429 when the queue is full (one running, --queue 1 waiting)', async () => {
    const body = { messages: ask('screen_08.png'), max_tokens: 4 };
    const rs = await Promise.all(Array.from({ length: 6 }, () => post(body)));
    const statuses = rs.map((r) => r.status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const refused = rs.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await apiError(refused)).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
    await Promise.all(rs.filter((r) => r.status !== 429).map((r) => r.text()));
  });
});

describe('serve: aborts and shutdown', () => {
  it('a client that disconnects aborts its generation', async () => {
    // Precondition: this request uses the whole budget (so an abort has something to stop).
    const full = await client.chat.completions.create({ ...LONG, model: 'm' });
    expect(full.choices[0]!.finish_reason).toBe('length');
    const r = await post({ ...LONG, stream: true });
    const reader = r.body!.getReader();
    await reader.read(); // the first event: generation is under way
    await reader.cancel();
    for (let i = 0; i < 100 && !/generation aborted: the client/.test(srv.stderr()); i++) await new Promise((ok) => setTimeout(ok, 50));
    expect(srv.stderr()).toMatch(/generation aborted: the client of POST \/v1\/chat\/completions disconnected/);
    // The engine is free again.
    const next = await client.chat.completions.create({ messages: ask('screen_02.png'), max_tokens: 4, model: 'm' });
    expect(next.choices[0]!.message.content).toBe('green');
  });

  it('SIGTERM stops accepting, lets in-flight work finish, exits 0', async () => {
    const r = await post({ ...LONG, stream: true });
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    srv.child.kill('SIGTERM');
    let text = new TextDecoder().decode(first.value);
    for (let c = await reader.read(); !c.done; c = await reader.read()) text += new TextDecoder().decode(c.value);
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(text).toMatch(/"finish_reason":"length"/);
    expect(await srv.exited).toBe(0);
    await expect(fetch(srv.baseURL.replace(/\/v1$/, '/health'))).rejects.toThrow();
  });
});
