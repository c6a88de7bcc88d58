/**
 * Vite plugin for tests and benchmarks: serves `../shared` (fixtures, the demo's trained model)
 * read-only under `/shared/`, this repository's own `test/fixtures/` under `/fixtures/` and test
 * scratch output under `/scratch/`, so browser tests fetch the
 * real files exactly as a page would fetch a model from a static host (single byte ranges too,
 * as GGUF files are read). The `dawn` project (Node) serves the same mounts from a `node:http`
 * server (test/dawn/global-setup.ts).
 *
 * Two test hooks, on real HTTP: every request under a mount is logged (path and query) and the
 * log is served as JSON at `/__fixture-requests`, so tests count downloads at the server; and a
 * `stall=<bytes>` query (with `stallTimes=<k>`, default every time) sends the first `bytes`
 * bytes of the file and then nothing, keeping the connection open, for the first `k` requests
 * of that exact URL: a server that stops sending mid-download.
 *
 * `.gguf` files are served as Hugging Face serves LFS files: with the file's SHA-256 as a quoted
 * `ETag`. An `etag=` query changes that: `wrong` (a 64-hex value that is not the file's),
 * `none` (no ETag), `linked` (the SHA-256 in `X-Linked-Etag`, a weak non-hash `ETag`).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve, normalize, sep } from 'node:path';
import type { Plugin } from 'vite';

export const repoRoot = resolve(import.meta.dirname, '..');
export const sharedDir = resolve(process.env.PIXTRAL_SHARED_DIR ?? resolve(repoRoot, '../shared'));
export const scratchDir = resolve(repoRoot, '.scratch');
/** Fixtures kept in this repository (made by the project, e.g. the mistral3 GGUF pair). */
export const repoFixturesDir = resolve(repoRoot, 'test/fixtures');

const mounts: Record<string, string> = { '/shared/': sharedDir, '/scratch/': scratchDir, '/fixtures/': repoFixturesDir };

/** Requests served so far under the mounts, `path?query`, in order. */
const requestLog: string[] = [];
const stallCounts = new Map<string, number>();
const fileHashes = new Map<string, string>();

/** SHA-256 of a served file, computed once per path and modification time. */
function fileSha256(file: string): string {
  const key = `${file}:${statSync(file).mtimeMs}`;
  let h = fileHashes.get(key);
  if (!h) fileHashes.set(key, (h = createHash('sha256').update(readFileSync(file)).digest('hex')));
  return h;
}

/** The entity tags of a `.gguf` (see the module comment). */
function ggufEtags(res: ServerResponse, file: string, mode: string | null): void {
  if (mode === 'none') return;
  if (mode === 'wrong') res.setHeader('ETag', `"${'0123456789abcdef'.repeat(4)}"`);
  else if (mode === 'linked') {
    res.setHeader('X-Linked-Etag', `"${fileSha256(file)}"`);
    res.setHeader('ETag', 'W/"7a3-not-a-hash"');
  } else res.setHeader('ETag', `"${fileSha256(file)}"`);
}

/**
 * Serves one request from the mounts (the Connect-style middleware of both the Vite plugin and
 * the `dawn` project's plain `node:http` server); calls `next` for any other path.
 */
export function serveFixtureFile(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/__fixture-requests') {
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.end(JSON.stringify(requestLog));
    return;
  }
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (!url.pathname.startsWith(prefix)) continue;
    const file = normalize(resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length))));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    requestLog.push(url.pathname + url.search);
    const size = statSync(file).size;
    res.setHeader('Cache-Control', 'no-store');
    if (file.endsWith('.gguf')) ggufEtags(res, file, url.searchParams.get('etag'));
    // Single byte ranges, as Hugging Face serves them (GGUF files are read by Range).
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
      if (start >= size || end < start) {
        res.statusCode = 416;
        res.setHeader('Content-Range', `bytes */${size}`);
        res.end();
        return;
      }
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      res.setHeader('Content-Length', end - start + 1);
      createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.setHeader('Content-Length', size);
    const stall = url.searchParams.get('stall');
    const key = url.pathname + url.search;
    const times = Number(url.searchParams.get('stallTimes') ?? Infinity);
    const n = stallCounts.get(key) ?? 0;
    if (stall !== null && n < times) {
      stallCounts.set(key, n + 1);
      // The headers and the first bytes, then silence until the client gives up.
      if (Number(stall) > 0) createReadStream(file, { start: 0, end: Number(stall) - 1 }).on('data', (c) => res.write(c));
      else res.flushHeaders();
      req.on('close', () => res.destroy());
      return;
    }
    createReadStream(file).pipe(res);
    return;
  }
  next();
}

/** A request as `listenFixtures` logs it: its path and its Range header ('' without one). */
export interface LoggedRequest {
  path: string;
  range: string;
}

/**
 * The same mounts on a real `node:http` server at 127.0.0.1 on a free port, for Node-side tests
 * (the dawn project's setup, the disk-cache tests). Each request is appended to `log` when given;
 * `hold(range)`, when it returns a promise, delays that response until the promise settles.
 */
export async function listenFixtures(o: { log?: LoggedRequest[]; hold?: (range: string) => Promise<void> | null } = {}) {
  const server = createServer((req, res) => {
    const range = req.headers.range ?? '';
    o.log?.push({ path: new URL(req.url!, 'http://x').pathname, range });
    const serve = () => serveFixtureFile(req, res, () => res.writeHead(404).end('not found'));
    const held = o.hold?.(range);
    if (held) void held.then(serve);
    else serve();
  });
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

export function fixtureServer(): Plugin {
  return {
    name: 'pixtral-fixture-server',
    configureServer(server) {
      server.middlewares.use(serveFixtureFile);
    },
  };
}
