/**
 * Vite plugin for tests and benchmarks: serves `../shared` (fixtures, the demo's trained model)
 * read-only under `/shared/` and test scratch output under `/scratch/`, so browser tests fetch the
 * real files exactly as a page would fetch a model from a static host. The `dawn` project (Node)
 * serves the same mounts from a `node:http` server (test/dawn/global-setup.ts).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve, normalize, sep } from 'node:path';
import type { Plugin } from 'vite';

export const repoRoot = resolve(import.meta.dirname, '..');
export const sharedDir = resolve(process.env.PIXTRAL_SHARED_DIR ?? resolve(repoRoot, '../shared'));
export const scratchDir = resolve(repoRoot, '.scratch');

const mounts: Record<string, string> = { '/shared/': sharedDir, '/scratch/': scratchDir };

/**
 * Serves one request from the mounts (the Connect-style middleware of both the Vite plugin and
 * the `dawn` project's plain `node:http` server); calls `next` for any other path.
 */
export function serveFixtureFile(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const url = new URL(req.url ?? '/', 'http://x');
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (!url.pathname.startsWith(prefix)) continue;
    const file = normalize(resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length))));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('Content-Length', statSync(file).size);
    res.setHeader('Cache-Control', 'no-store');
    createReadStream(file).pipe(res);
    return;
  }
  next();
}

export function fixtureServer(): Plugin {
  return {
    name: 'pixtral-fixture-server',
    configureServer(server) {
      server.middlewares.use(serveFixtureFile);
    },
  };
}
