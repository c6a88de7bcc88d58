/**
 * Locks between processes that share one disk cache: the browser store's Web Lock rules
 * (src/weights/locks.ts) for Node, held as files under `<cache>/locks/`:
 *
 * - `<key>.download`, exclusive: created with O_EXCL while a process checks what is cached and
 *   downloads what is missing. A second process loading the same version waits (polling) until
 *   the file is gone, then finds everything cached and downloads nothing. A lock left by a
 *   process that died (its pid is not alive on this host) is taken over.
 * - `<key>.use/<pid>-<n>`, shared: one file per holder while a process loads or holds that
 *   version; a delete is refused (InUseError) and a prune skips the version while a live process
 *   holds it. Files of dead holders are removed when found.
 *
 * Each file holds its owner `{ pid, host, token }`. Processes are told apart on one machine
 * only: an owner on another host (a cache folder shared over a network file system) counts as
 * alive, so nothing of it is ever taken over. Taking over a dead owner's download lock is best
 * effort: two waiters that notice the same dead owner in the same instant can both proceed (each
 * still writes whole, hash-checked chunks, as before these locks).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { throwIfAborted } from '../errors.js';
import { sleep } from '../weights/retry.js';
import type { LockHandle } from '../weights/locks.js';

/** How often a waiting process looks at a download lock again. */
const POLL_MS = 100;
/** A lock file still without a readable owner this long after it was made is a crash's leftover. */
const UNWRITTEN_MS = 10_000;

interface Owner {
  pid: number;
  host: string;
  token: string;
}

function me(): Owner {
  return { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') };
}

/** Whether the owner may still be running (anything on another host counts as running). */
function alive(o: Owner): boolean {
  if (o.host !== hostname()) return true;
  try {
    process.kill(o.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, another user's
  }
}

async function readOwner(path: string): Promise<Owner | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined; // gone
  }
  try {
    const o = JSON.parse(text) as Owner;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? o : null;
  } catch {
    return null; // being written, or damaged
  }
}

/** Whether the file at `path`, whose owner cannot be read, was made long enough ago to be a leftover. */
async function leftover(path: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > UNWRITTEN_MS;
  } catch {
    return false;
  }
}

/** Creates `path` holding `owner` if it does not exist; false if it does. */
async function createExclusive(path: string, owner: Owner): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await fh.writeFile(JSON.stringify(owner));
  } finally {
    await fh.close();
  }
  return true;
}

/** Removes a lock file if it still holds `owner` (moved aside first, so a newer owner's file is not removed). */
async function removeIfOwned(path: string, owner: Owner): Promise<void> {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.old`;
  try {
    await rename(path, aside);
  } catch {
    return; // already gone
  }
  const o = await readOwner(aside);
  if (o && o.token !== owner.token) {
    // Someone else's (a race with a takeover): put it back unless another appeared meanwhile.
    if (await createExclusive(path, o)) await rm(aside, { force: true });
    return;
  }
  await rm(aside, { force: true });
}

/** The cache's lock files (see the module comment). */
export interface DiskLocks {
  /** Holds `key` against deletion by other processes until released. */
  hold(key: string, signal?: AbortSignal): Promise<LockHandle>;
  /** Runs `fn` as the only process (and the only caller in this one) downloading `key`. */
  whileDownloading<T>(key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T>;
  /** Whether a live process (this one included) holds `key`. */
  inUse(key: string): Promise<boolean>;
}

/** The locks of the disk cache at `cacheDir`. */
export function diskLocks(cacheDir: string): DiskLocks {
  const dir = join(cacheDir, 'locks');
  let held = 0;
  return {
    async hold(key, signal) {
      throwIfAborted(signal);
      const useDir = join(dir, `${key}.use`);
      await mkdir(useDir, { recursive: true });
      const owner = me();
      const path = join(useDir, `${process.pid}-${++held}-${owner.token}`);
      await createExclusive(path, owner);
      let released: Promise<void> | null = null;
      return { release: () => (released ??= rm(path, { force: true })) };
    },

    async whileDownloading(key, signal, fn) {
      await mkdir(dir, { recursive: true });
      const path = join(dir, `${key}.download`);
      const owner = me();
      for (;;) {
        throwIfAborted(signal);
        if (await createExclusive(path, owner)) break;
        const o = await readOwner(path);
        if (o && !alive(o)) await removeIfOwned(path, o);
        else if (o === null && (await leftover(path))) await rm(path, { force: true });
        else await sleep(POLL_MS, signal);
      }
      try {
        return await fn();
      } finally {
        await removeIfOwned(path, owner);
      }
    },

    async inUse(key) {
      const useDir = join(dir, `${key}.use`);
      let names: string[];
      try {
        names = await readdir(useDir);
      } catch {
        return false;
      }
      let any = false;
      for (const n of names) {
        const path = join(useDir, n);
        const o = await readOwner(path);
        if (o === undefined) continue;
        if (o ? alive(o) : !(await leftover(path))) any = true; // a file being written counts as held
        else await rm(path, { force: true });
      }
      return any;
    },
  };
}
