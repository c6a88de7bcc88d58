/**
 * Processes sharing one disk cache (src/node/locks.ts under the GGUF cache and `deleteDiskCached`),
 * with real child processes (`procs/open-gguf-pair.ts`) against a real `node:http` server running
 * the fixture handler: two processes opening the same pair at once download each chunk once (the
 * server holds every chunk until both have probed the file, so the second surely waits on the
 * first's download lock) and the waiter finds it all cached; a pair held by a live process is not
 * deleted (InUseError) and is once that process is killed; a download lock left by a dead process
 * is taken over instead of waited on forever; a wait for a download lock ends on abort.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AbortError, InUseError } from '../../src/errors.js';
import { openGgufPair } from '../../src/gguf/cache.js';
import { deleteDiskCached, listDiskCache } from '../../src/node/cache.js';
import { diskGgufCache } from '../../src/node/gguf-cache.js';
import { diskLocks } from '../../src/node/locks.js';
import { listenFixtures, sharedDir, type LoggedRequest } from '../fixture-server.js';

const CHILD = fileURLToPath(new URL('./procs/open-gguf-pair.ts', import.meta.url));
const KQ = resolve(sharedDir, 'fixtures/gguf/kq');
const TEXT = 'pixtral-kq-tiny-text-q4_k_m.gguf';
const MMPROJ = 'pixtral-kq-tiny-mmproj-f16.gguf';
/** Not the header read's 256 KiB, so a chunk's range tells apart from a header read's. */
const CHUNK = 192 << 10;

let server: Awaited<ReturnType<typeof listenFixtures>>;
let origin: string;
let cache: string;
const log: LoggedRequest[] = [];
/** While set, chunk requests (ranges past the 1-byte probe) wait for it. */
let gate: Promise<void> | null = null;

beforeAll(async () => {
  server = await listenFixtures({ log, hold: (range) => (gate && range && range !== 'bytes=0-0' ? gate : null) });
  origin = server.origin;
});
afterAll(() => server.close());
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'pixtral-locks-'));
  log.length = 0;
  gate = null;
  return () => rm(cache, { recursive: true, force: true });
});

const url = (f: string) => `${origin}/shared/fixtures/gguf/kq/${f}`;

interface Child {
  /** The child's first line (what it opened), once printed. */
  opened: Promise<{ fromCache: boolean; key: string }>;
  exited: Promise<number | null>;
  kill(): void;
}

function openInChild(mode: 'open' | 'hold' = 'open'): Child {
  const p = spawn(process.execPath, ['--import', 'tsx', CHILD, cache, url(TEXT), url(MMPROJ), String(CHUNK), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const opened = new Promise<{ fromCache: boolean; key: string }>((res, rej) => {
    p.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) res(JSON.parse(line!));
    });
    p.on('exit', (code) => rej(new Error(`child exited ${code} before opening: ${err}`)));
  });
  const exited = new Promise<number | null>((res) => p.on('exit', (code) => res(code)));
  return { opened, exited, kill: () => p.kill('SIGKILL') };
}

/** The chunk ranges (not the 1-byte probes) requested per file. */
const chunkRanges = (file: string) => log.filter((l) => l.path.endsWith(file) && l.range && l.range !== 'bytes=0-0').map((l) => l.range);

describe('processes sharing one disk cache', () => {
  it('two processes opening one pair at once: each chunk is downloaded once, the second waits and finds it cached', async () => {
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const a = openInChild();
    const b = openInChild();
    // Both have probed the text file (each is past its cache check, about to take the lock).
    await expect.poll(() => log.filter((l) => l.path.endsWith(TEXT) && l.range === 'bytes=0-0').length, { timeout: 30_000 }).toBe(2);
    open();
    const [ra, rb] = await Promise.all([a.opened, b.opened]);
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    expect(ra.key).toBe(rb.key);
    expect([ra.fromCache, rb.fromCache].sort()).toEqual([false, true]);
    for (const f of [TEXT, MMPROJ]) {
      const size = (await readFile(join(KQ, f))).byteLength;
      const chunks = Array.from({ length: Math.ceil(size / CHUNK) }, (_, i) => `bytes=${i * CHUNK}-${Math.min(size, (i + 1) * CHUNK) - 1}`);
      const ranges = chunkRanges(f);
      // Every chunk once; besides them only each process's own header read.
      for (const c of chunks) expect(ranges.filter((r) => r === c), `${f} ${c}`).toHaveLength(1);
      expect(ranges.filter((r) => !chunks.includes(r)).length).toBeLessThanOrEqual(2);
    }
    const listed = await listDiskCache(cache);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.complete).toBe(true);
  }, 60_000);

  it('a pair held by a live process is not deleted; once that process is killed it is', async () => {
    const holder = openInChild('hold');
    await holder.opened;
    await expect(deleteDiskCached(url(TEXT), cache)).rejects.toThrow(InUseError);
    expect(await listDiskCache(cache)).toHaveLength(1);
    holder.kill();
    await holder.exited;
    expect(await deleteDiskCached(url(TEXT), cache)).toHaveLength(1);
    expect(await listDiskCache(cache)).toEqual([]);
  }, 60_000);

  it("a download lock left by a dead process is taken over, not waited on", async () => {
    const first = await openGgufPair(diskGgufCache(cache), { url: url(TEXT), mmproj: url(MMPROJ), chunkBytes: CHUNK });
    await first.release();
    expect(await deleteDiskCached(url(TEXT), cache)).toHaveLength(1);
    // A process that has exited: its pid is not alive.
    const dead = spawn(process.execPath, ['-e', '']);
    const pid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    await mkdir(join(cache, 'locks'), { recursive: true });
    await writeFile(join(cache, 'locks', `${first.key}.download`), JSON.stringify({ pid, host: hostname(), token: 'dead' }));
    log.length = 0;
    const again = await openGgufPair(diskGgufCache(cache), { url: url(TEXT), mmproj: url(MMPROJ), chunkBytes: CHUNK });
    expect(again.fromCache).toBe(false);
    expect(chunkRanges(TEXT).length).toBeGreaterThan(0);
    await again.release();
  }, 30_000);

  it('a wait for a download lock ends with AbortError when aborted, and the lock is free after its owner', async () => {
    const locks = diskLocks(cache);
    let finish!: () => void;
    const owner = locks.whileDownloading('k', undefined, () => new Promise<void>((r) => (finish = r)));
    await expect.poll(() => typeof finish).toBe('function');
    const stop = new AbortController();
    let ran = false;
    const waiter = locks.whileDownloading('k', stop.signal, async () => void (ran = true));
    setTimeout(() => stop.abort(), 50);
    await expect(waiter).rejects.toThrow(AbortError);
    expect(ran).toBe(false);
    finish();
    await owner;
    expect(await locks.whileDownloading('k', undefined, async () => 'next')).toBe('next');
  });
});
