/**
 * The demo's service worker (built by Vite as `sw.js` at the site root): makes the app shell
 * work offline after one visit. It precaches every file listed in `precache.json` (HTML, JS, CSS,
 * the library's worker chunk, the pdf.js worker; written at build time by vite.demo.config.ts)
 * and serves them when the network is gone. Strategy:
 * - page navigations and precache.json: network first, the cache when offline;
 * - other same-origin files (content-hashed assets): cache first, network on a miss (cached);
 * - model files (`models/...`) and other origins: not touched. Weights live in IndexedDB (the
 *   library's cache), and the library falls back to its cached manifest when the network fails.
 * After an online navigation it checks precache.json again; a new version is cached whole and the
 * old caches are deleted, so a redeploy is picked up without changing this file. Files cached at
 * run time go to a cache named after the same version (`pixtral-demo-<version>-runtime`), so
 * they are pruned with it: on activate and after each check, every `pixtral-demo-*` cache that
 * is not the current version's shell or runtime cache is deleted.
 */
export {};

interface SwExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface SwFetchEvent extends SwExtendableEvent {
  readonly request: Request;
  respondWith(r: Response | Promise<Response>): void;
}
interface SwScope {
  readonly registration: { readonly scope: string };
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', fn: (e: SwExtendableEvent) => void): void;
  addEventListener(type: 'fetch', fn: (e: SwFetchEvent) => void): void;
}

const sw = self as unknown as SwScope;
const PREFIX = 'pixtral-demo-';
const SHELL = /^pixtral-demo-([0-9a-f]{16})$/;
const scope = new URL(sw.registration.scope);
/** The precache version in use; found again from the cache names after a service-worker restart. */
let version: string | null = null;

async function currentVersion(): Promise<string | null> {
  if (version) return version;
  for (const key of await caches.keys()) {
    const m = SHELL.exec(key);
    if (m) return (version = m[1]!);
  }
  return null;
}

const runtimeCache = (v: string) => `${PREFIX}${v}-runtime`;

/** Deletes every cache of this demo but the current version's shell and runtime caches. */
async function prune(): Promise<void> {
  const v = await currentVersion();
  if (!v) return;
  for (const key of await caches.keys()) {
    if (key.startsWith(PREFIX) && key !== `${PREFIX}${v}` && key !== runtimeCache(v)) await caches.delete(key);
  }
}

interface Precache {
  version: string;
  files: string[];
}

/** Caches the current precache list if this version is not cached yet; deletes older versions. */
async function updatePrecache(): Promise<void> {
  const r = await fetch(new URL('precache.json', scope), { cache: 'no-cache' });
  if (!r.ok) throw new Error(`precache.json: HTTP ${r.status}`);
  const list = (await r.clone().json()) as Precache;
  const name = `${PREFIX}${list.version}`;
  if (!(await caches.has(name))) {
    const cache = await caches.open(`${name}-partial`);
    await cache.addAll(list.files.map((f) => new URL(f, scope).href));
    await cache.put(new URL('precache.json', scope).href, r);
    // Rename by copying: a half-filled cache never carries the final name.
    const done = await caches.open(name);
    for (const req of await cache.keys()) {
      const res = await cache.match(req);
      if (res) await done.put(req, res);
    }
    await caches.delete(`${name}-partial`);
  }
  version = list.version;
  await prune();
}

sw.addEventListener('install', (e) => {
  e.waitUntil(updatePrecache().then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(prune().then(() => sw.clients.claim()));
});

function isModelFile(url: URL): boolean {
  return url.pathname.startsWith(new URL('models/', scope).pathname);
}

async function networkFirst(req: Request, fallback?: string): Promise<Response> {
  try {
    return await fetch(req);
  } catch (err) {
    const hit = (await caches.match(req, { ignoreSearch: true })) ?? (fallback ? await caches.match(new URL(fallback, scope).href) : undefined);
    if (hit) return hit;
    throw err;
  }
}

async function cacheFirst(req: Request): Promise<Response> {
  const hit = await caches.match(req);
  if (hit) return hit;
  const res = await fetch(req);
  const v = await currentVersion();
  if (res.ok && res.type === 'basic' && v) {
    const cache = await caches.open(runtimeCache(v));
    await cache.put(req, res.clone());
  }
  return res;
}

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname) || isModelFile(url)) return;
  if (req.mode === 'navigate') {
    e.respondWith(networkFirst(req, './'));
    // Online: pick up a new deployment's file list in the background.
    e.waitUntil(updatePrecache().catch(() => undefined));
    return;
  }
  if (url.pathname.endsWith('/precache.json')) {
    e.respondWith(networkFirst(req));
    return;
  }
  e.respondWith(cacheFirst(req));
});
