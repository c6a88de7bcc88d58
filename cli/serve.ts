/**
 * `pixtral-webgpu serve <model> [--host 127.0.0.1] [--port 8080] [options]`: an OpenAI-compatible
 * HTTP server over one model on this machine's WebGPU (Dawn). Loads the model, listens, prints
 * `listening on http://HOST:PORT` on stdout once ready (`--port 0` picks a free port), and on
 * SIGINT/SIGTERM stops accepting, gives in-flight work `--grace-seconds` to finish, aborts the
 * rest, frees the GPU and exits 0. Exit 1 when the model cannot be loaded, 2 on a usage error.
 */
import { basename, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { createChatServer } from './serve/server.js';
import { loadServedModel } from './serve/model.js';
import { checkGgufArgs, parseCommandArgs, UsageError, visionWeightsFlag } from './usage.js';

export const SERVE_HELP = `Usage: pixtral-webgpu serve <model> [options]

Serves <model> (a folder made by \`convert\`, or its http(s) URL; or a llama.cpp text GGUF with
--mmproj) with an OpenAI-compatible API:
POST /v1/chat/completions (stream or not), GET /v1/models, GET /health.

Options:
  --mmproj FILE             the mmproj GGUF (vision tower) when <model> is a text GGUF
  --host HOST               interface to listen on (default 127.0.0.1)
  --port N                  port (default 8080; 0 = any free port)
  --api-key KEY             require "Authorization: Bearer KEY" on /v1/* (or set PIXTRAL_WEBGPU_API_KEY)
  --cors ORIGIN             allow browser pages from ORIGIN (or *) to call the API (default: no CORS)
  --allow-remote-images     fetch http(s) image_url parts (default: only data: URLs)
  --model-id NAME           the name in /v1/models and responses (default: the model's name)
  --max-context N           KV-cache length to allocate
  --vision-weights W        host: vision layers in host memory, uploaded per image (less GPU memory); gpu (default)
  --max-body-mb N           largest request body (default 32)
  --queue N                 requests that may wait while one runs (default 16; more get 429)
  --grace-seconds N         on SIGINT/SIGTERM, time in-flight work gets before it is aborted (default 30)
  --adapter NAME            WebGPU adapter: 'software', an index, or part of its name (or PIXTRAL_WEBGPU_ADAPTER)
  -h, --help                this help
`;

export const API_KEY_ENV = 'PIXTRAL_WEBGPU_API_KEY';

export interface ServeArgs {
  model: string;
  /** The mmproj GGUF: `model` is then a text GGUF. */
  mmproj?: string;
  host: string;
  port: number;
  apiKey?: string;
  cors?: string;
  allowRemoteImages: boolean;
  modelId?: string;
  maxContext?: number;
  visionWeights?: 'gpu' | 'host';
  maxBodyBytes: number;
  maxQueue: number;
  graceMs: number;
  adapter?: string;
}

function int(flag: string, v: string | undefined, min: number, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min} (got "${v}")`);
  return n;
}

/** Parses `serve`'s arguments (after the word `serve`); null for --help. Throws UsageError. */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeArgs | null {
  const { values: v, positionals: pos } = parseCommandArgs(argv, {
    mmproj: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'api-key': { type: 'string' },
    cors: { type: 'string' },
    'allow-remote-images': { type: 'boolean' },
    'model-id': { type: 'string' },
    'max-context': { type: 'string' },
    'vision-weights': { type: 'string' },
    'max-body-mb': { type: 'string' },
    queue: { type: 'string' },
    'grace-seconds': { type: 'string' },
    adapter: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return null;
  if (pos.length !== 1) throw new UsageError(`serve needs exactly one <model> (got ${pos.length})`);
  checkGgufArgs(pos[0]!, v.mmproj);
  const port = int('--port', v.port, 0, 8080);
  if (port > 65535) throw new UsageError(`--port must be at most 65535 (got ${port})`);
  const maxBodyMb = v['max-body-mb'] === undefined ? 32 : Number(v['max-body-mb']);
  if (!(maxBodyMb > 0)) throw new UsageError(`--max-body-mb must be a positive number (got "${v['max-body-mb']}")`);
  const grace = v['grace-seconds'] === undefined ? 30 : Number(v['grace-seconds']);
  if (!(grace >= 0)) throw new UsageError(`--grace-seconds must be a number >= 0 (got "${v['grace-seconds']}")`);
  const apiKey = v['api-key'] ?? (env[API_KEY_ENV] || undefined);
  return {
    model: pos[0]!,
    ...(v.mmproj !== undefined ? { mmproj: v.mmproj } : {}),
    host: v.host ?? '127.0.0.1',
    port,
    apiKey,
    cors: v.cors,
    allowRemoteImages: v['allow-remote-images'] ?? false,
    modelId: v['model-id'],
    maxContext: v['max-context'] === undefined ? undefined : int('--max-context', v['max-context'], 1, 0),
    visionWeights: visionWeightsFlag(v['vision-weights']),
    maxBodyBytes: Math.round(maxBodyMb * 2 ** 20),
    maxQueue: int('--queue', v.queue, 0, 16),
    graceMs: grace * 1000,
    adapter: v.adapter,
  };
}

/** Runs `serve` until SIGINT/SIGTERM; resolves to the exit code. */
export async function serveMain(argv: string[]): Promise<number> {
  let args: ServeArgs | null;
  try {
    args = parseServeArgs(argv);
  } catch (e) {
    process.stderr.write(`pixtral-webgpu serve: ${(e as Error).message}\nRun "pixtral-webgpu serve --help" for usage.\n`);
    return 2;
  }
  if (!args) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const local = !/^https?:\/\//i.test(args.model);
  if (local && !existsSync(args.model)) {
    process.stderr.write(`pixtral-webgpu serve: error: no model folder at ${resolve(args.model)}\n`);
    return 1;
  }
  let engine;
  try {
    engine = await loadServedModel(args);
  } catch (e) {
    process.stderr.write(`pixtral-webgpu serve: error: could not load ${args.model}: ${(e as Error).message}\n`);
    return 1;
  }
  const modelId = args.modelId ?? (engine.info.model || basename(resolve(args.model)));
  const chat = createChatServer(engine, { modelId, apiKey: args.apiKey, cors: args.cors, maxBodyBytes: args.maxBodyBytes, maxQueue: args.maxQueue,
    log: (line) => process.stderr.write(`pixtral-webgpu serve: ${line}\n`),
  });
  try {
    await new Promise<void>((ok, fail) => {
      chat.server.once('error', fail);
      chat.server.listen(args.port, args.host, () => ok());
    });
  } catch (e) {
    process.stderr.write(`pixtral-webgpu serve: error: cannot listen on ${args.host}:${args.port}: ${(e as Error).message}\n`);
    await engine.dispose();
    return 1;
  }
  const addr = chat.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : args.port;
  const host = args.host.includes(':') ? `[${args.host}]` : args.host;
  process.stderr.write(
    `pixtral-webgpu serve: ${modelId} (${engine.info.dtype ?? '?'}, context ${engine.info.context ?? '?'}) on ${engine.info.adapter ?? '?'}` +
      `${args.apiKey ? ', API key required' : ''}${args.cors ? `, CORS ${args.cors}` : ''}\n`,
  );
  process.stdout.write(`listening on http://${host}:${port}\n`);

  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.stderr.write(`pixtral-webgpu serve: ${signal}: stopping (in-flight work gets ${args.graceMs / 1000} s)\n`);
      done();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
  // Waiting on GPU work holds no handle of Node's event loop: keep it alive until the end.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await chat.shutdown(args.graceMs);
    await engine.dispose().catch(() => undefined);
  } finally {
    clearInterval(keepAlive);
  }
  process.stderr.write('pixtral-webgpu serve: stopped\n');
  // Dawn may keep native handles open after the device is destroyed: do not wait on them.
  setTimeout(() => process.exit(0), 1000).unref();
  return 0;
}
