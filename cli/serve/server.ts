/**
 * The HTTP layer of `pixtral-webgpu serve`, on Node's `http` with a small route table:
 *
 *   POST /v1/chat/completions   OpenAI chat completions (JSON, or SSE `data:` chunks ending with `data: [DONE]`)
 *   GET  /v1/models             the one model served;  GET /v1/models/<id>
 *   GET  /health                liveness, the model and the queue (no auth)
 *
 * Requests go through the OpenAI facade (`src/openai`), one at a time (`queue.ts`); a client
 * that disconnects aborts its generation (or leaves the queue). `--api-key` requires
 * `Authorization: Bearer <key>` on /v1/*; `--cors <origin>` answers preflights and adds
 * `Access-Control-Allow-Origin`. `shutdown(graceMs)` stops accepting, lets in-flight work finish
 * for up to `graceMs`, then aborts it.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { ChatEngine, ChatCompletion, ChatCompletionChunk } from '../../src/openai/types.js';
import { readJson } from './body.js';
import { errorBody, HttpError, toHttpError } from './errors.js';
import { RequestQueue } from './queue.js';

export interface ServerOptions {
  /** Name the model is served as (`/v1/models`, `model` in responses). */
  modelId: string;
  /** Require `Authorization: Bearer <apiKey>` on /v1/*. */
  apiKey?: string;
  /** Allowed origin for CORS (`*` for any); unset: no CORS headers. */
  cors?: string;
  /** Largest accepted body in bytes. */
  maxBodyBytes: number;
  /** Requests that may wait while one runs. */
  maxQueue: number;
  /** One line per finished request (method, path, status, ms; "client disconnected" when it did). */
  log?: (line: string) => void;
}

export interface ChatServer {
  server: Server;
  queue: RequestQueue;
  /** Stops accepting; in-flight and queued work gets `graceMs` to finish, then is aborted. */
  shutdown(graceMs: number): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: unknown): void {
  const h = toHttpError(e);
  if (res.headersSent) return void res.end();
  if (h.status === 429) res.setHeader('Retry-After', '1');
  if (h.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  sendJson(res, h.status, errorBody(h));
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createChatServer(engine: ChatEngine, o: ServerOptions): ChatServer {
  const queue = new RequestQueue(o.maxQueue);
  const inflight = new Set<AbortController>();
  let closing = false;

  const modelObject = { id: o.modelId, object: 'model', created: Math.floor(Date.now() / 1000), owned_by: 'pixtral-webgpu' };

  const chatCompletions: Handler = async (req, res) => {
    const body = await readJson(req, o.maxBodyBytes);
    const ac = new AbortController();
    // 'close' on the response before it finished = the client went away.
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    inflight.add(ac);
    let leave: (() => void) | undefined;
    try {
      leave = await queue.enter(ac.signal);
      let result;
      try {
        result = await engine.chat.completions.create(body as never, { signal: ac.signal });
      } catch (e) {
        if (res.destroyed) return void o.log?.(`generation aborted: the client of ${req.method} ${req.url} disconnected`);
        throw e;
      }
      if (!(Symbol.asyncIterator in result)) {
        sendJson(res, 200, { ...(result as ChatCompletion), model: o.modelId });
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      try {
        for await (const c of result as AsyncIterable<ChatCompletionChunk>) res.write(`data: ${JSON.stringify({ ...c, model: o.modelId })}\n\n`);
      } catch (e) {
        if (res.destroyed) {
          o.log?.(`generation aborted: the client of ${req.method} ${req.url} disconnected`);
          return;
        }
        // Headers are gone: the error travels as an event, as vLLM does, then the stream ends.
        res.write(`data: ${JSON.stringify(errorBody(toHttpError(e)))}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    } finally {
      inflight.delete(ac);
      leave?.();
    }
  };

  const routes: Record<string, Record<string, Handler>> = {
    '/v1/chat/completions': { POST: chatCompletions },
    '/v1/models': { GET: (_q, res) => sendJson(res, 200, { object: 'list', data: [modelObject] }) },
    '/health': {
      GET: (_q, res) => sendJson(res, closing ? 503 : 200, { status: closing ? 'shutting_down' : 'ok', model: o.modelId, engine: engine.info.backend, running: queue.active, waiting: queue.waiting }),
    },
  };

  function route(path: string): Record<string, Handler> | undefined {
    if (routes[path]) return routes[path];
    const m = /^\/v1\/models\/(.+)$/.exec(path);
    if (!m) return undefined;
    const id = decodeURIComponent(m[1]!);
    return {
      GET: (_q, res) => (id === o.modelId ? sendJson(res, 200, modelObject) : sendError(res, new HttpError(404, `model "${id}" is not served here (this server serves "${o.modelId}")`, 'invalid_request_error', 'model_not_found', 'model'))),
    };
  }

  const server = createHttpServer(async (req, res) => {
    const t0 = performance.now();
    res.on('close', () =>
      o.log?.(`${req.method} ${req.url} ${res.writableFinished ? res.statusCode : `${res.headersSent ? res.statusCode : '-'} client disconnected`} ${(performance.now() - t0).toFixed(0)} ms`),
    );
    try {
      if (o.cors) {
        res.setHeader('Access-Control-Allow-Origin', o.cors);
        if (o.cors !== '*') res.setHeader('Vary', 'Origin');
      }
      const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '') || '/';
      if (req.method === 'OPTIONS' && o.cors) {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
          // The openai client sends its own x-stainless-* headers: allow what the preflight asks for.
          'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type',
          'Access-Control-Max-Age': '600',
        });
        return void res.end();
      }
      if (closing) {
        res.setHeader('Connection', 'close');
        throw new HttpError(503, 'the server is shutting down', 'server_error', 'shutting_down');
      }
      const methods = route(path);
      if (!methods) throw new HttpError(404, `no route ${req.method} ${path}`, 'invalid_request_error', 'not_found');
      const handler = methods[req.method ?? ''];
      if (!handler) {
        res.setHeader('Allow', Object.keys(methods).join(', '));
        throw new HttpError(405, `${req.method} is not allowed on ${path} (allowed: ${Object.keys(methods).join(', ')})`, 'invalid_request_error', 'method_not_allowed');
      }
      if (o.apiKey && path.startsWith('/v1/')) {
        const auth = req.headers.authorization ?? '';
        const m = /^Bearer\s+(.+)$/i.exec(auth);
        if (!m || !sameSecret(m[1]!.trim(), o.apiKey)) throw new HttpError(401, 'missing or wrong API key (send Authorization: Bearer <key>)', 'invalid_request_error', 'invalid_api_key');
      }
      await handler(req, res);
    } catch (e) {
      if (!res.destroyed) sendError(res, e);
      // Unread body bytes (a refused upload) must not be parsed as the next request.
      if (!req.complete) req.resume();
    }
  });

  async function shutdown(graceMs: number): Promise<void> {
    closing = true;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs).unref());
    if ((await Promise.race([queue.idle().then(() => 'idle' as const), timer])) === 'late') {
      for (const ac of inflight) ac.abort();
      await queue.idle();
    }
    server.closeAllConnections();
    await closed;
  }

  return { server, queue, shutdown };
}
