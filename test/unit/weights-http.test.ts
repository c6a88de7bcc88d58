/**
 * One file over real HTTP (a node:http server on localhost, Node's fetch): the stall guard
 * against a server that stops sending, retries and Retry-After through an injected sleep that
 * records each delay instead of waiting (no wall-clock assertion anywhere).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, NetworkError } from '../../src/errors.js';
import { fetchOnce, fileUrl, withRetries, type HttpCtx } from '../../src/weights/http.js';

const BODY = new Uint8Array(10_000).map((_, i) => (i * 7) & 255);

type Handler = (req: IncomingMessage, res: ServerResponse, nth: number) => void;
let server: Server;
let base: string;
let handler: Handler;
const counts = new Map<string, number>();
const open = new Set<ServerResponse>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const n = (counts.get(req.url!) ?? 0) + 1;
    counts.set(req.url!, n);
    open.add(res);
    res.on('close', () => open.delete(res));
    handler(req, res, n);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  for (const r of open) r.destroy();
  await new Promise((r) => server.close(r));
});

/** Sends the headers and the first `bytes` bytes, then nothing (the connection stays open). */
const stallAfter = (bytes: number): Handler => (_req, res) => {
  res.writeHead(200, { 'Content-Length': BODY.byteLength });
  if (bytes) res.write(BODY.subarray(0, bytes));
  else res.flushHeaders();
};
const serve: Handler = (_req, res) => {
  res.writeHead(200, { 'Content-Length': BODY.byteLength });
  res.end(BODY);
};

/** A context whose waits between attempts are recorded, not slept. */
function ctx(o: Partial<HttpCtx> = {}) {
  const waits: number[] = [];
  const c: HttpCtx = {
    fetch: globalThis.fetch,
    signal: new AbortController().signal,
    policy: { retries: 2, baseDelayMs: 100, maxDelayMs: 15_000 },
    stallTimeoutMs: 300,
    sleep: async (ms) => void waits.push(ms),
    random: () => 0,
    ...o,
  };
  return { c, waits };
}

let path = 0;
const fresh = () => `${base}f${path++}.bin`;
const get = (c: HttpCtx, url: string) => withRetries(c, url, () => fetchOnce(c, url, BODY.byteLength));

describe('stall timeout', () => {
  it('a server that stops sending mid-body is retried, then fails with NetworkError naming the stall', async () => {
    handler = stallAfter(1000);
    const url = fresh();
    const { c, waits } = ctx();
    const err = await get(c, url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(/failed after 3 attempts: .*no bytes for 0\.3 s, stalled after 1000 bytes/);
    expect(counts.get(new URL(url).pathname)).toBe(3);
    expect(waits).toEqual([50, 100]); // backoff between the attempts, jitter at its floor
  });

  it('a server that never sends the headers counts as stalled too', async () => {
    handler = () => {}; // accepts the request, answers nothing
    const url = fresh();
    const { c } = ctx({ policy: { retries: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    const err = await get(c, url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(/no bytes for 0\.3 s, stalled after 0 bytes/);
    expect(counts.get(new URL(url).pathname)).toBe(2);
  });

  it('a stall once, then a full answer: the retry gets every byte', async () => {
    handler = (req, res, nth) => (nth === 1 ? stallAfter(4000) : serve)(req, res, nth);
    const url = fresh();
    const { c } = ctx();
    const got = await get(c, url);
    expect(Buffer.from(got!).equals(Buffer.from(BODY))).toBe(true);
    expect(counts.get(new URL(url).pathname)).toBe(2);
  });

  it('the guard restarts with every chunk: a slow but steady body is not a stall', async () => {
    // 10 chunks 100 ms apart (1 s in all) under a 600 ms guard: only "no byte for 600 ms" fails.
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Length': BODY.byteLength });
      let i = 0;
      const t = setInterval(() => {
        res.write(BODY.subarray(i * 1000, (i + 1) * 1000));
        if (++i === 10) {
          clearInterval(t);
          res.end();
        }
      }, 100);
    };
    const url = fresh();
    const { c } = ctx({ stallTimeoutMs: 600, policy: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } });
    const chunks: number[] = [];
    const got = await fetchOnce(c, url, BODY.byteLength, (n) => chunks.push(n));
    expect(got?.byteLength).toBe(BODY.byteLength);
    expect(chunks.length).toBeGreaterThanOrEqual(10);
    expect(counts.get(new URL(url).pathname)).toBe(1);
  });

  it("the caller's abort during a stall is an AbortError, not a retry", async () => {
    handler = stallAfter(500);
    const url = fresh();
    const ac = new AbortController();
    const { c, waits } = ctx({ signal: ac.signal, stallTimeoutMs: 60_000 });
    const p = get(c, url);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(waits).toEqual([]);
  });
});

describe('retries', () => {
  it('waits what Retry-After asks (capped), measured by the injected clock', async () => {
    handler = (req, res, nth) => {
      if (nth === 1) {
        res.writeHead(503, { 'Retry-After': '7' });
        res.end();
      } else if (nth === 2) {
        res.writeHead(429, { 'Retry-After': '3600' });
        res.end();
      } else serve(req, res, nth);
    };
    const url = fresh();
    const { c, waits } = ctx();
    expect((await get(c, url))?.byteLength).toBe(BODY.byteLength);
    expect(waits).toEqual([7000, 15_000]);
  });

  it('a 404 is final: one request, NetworkError with the status', async () => {
    handler = (_req, res) => {
      res.writeHead(404);
      res.end();
    };
    const url = fresh();
    const { c, waits } = ctx();
    const err = await get(c, url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).status).toBe(404);
    expect(waits).toEqual([]);
    expect(counts.get(new URL(url).pathname)).toBe(1);
  });
});

describe('file URLs', () => {
  it("keep the caller's query string (signed URLs)", () => {
    expect(fileUrl('https://cdn.example/m/', 'shard-00000.bin', '?sig=abc&exp=1')).toBe('https://cdn.example/m/shard-00000.bin?sig=abc&exp=1');
    expect(fileUrl('https://cdn.example/m/', 'manifest.json', '')).toBe('https://cdn.example/m/manifest.json');
  });
});
