/**
 * Web Locks (`navigator.locks`) that keep contexts of one origin (tabs, workers, iframes) from
 * hurting each other over the shared IndexedDB cache:
 *
 * - `use:<manifestHash>`, shared: held by every context while it loads or holds that model
 *   (released by the handle's `release()`, which the engine calls when the model is released);
 *   a delete or a prune of that version needs it exclusively and does not wait for it: a delete
 *   is refused with InUseError, a prune of an old version is skipped until a later load.
 * - `download:<manifestHash>`, exclusive: held while a context checks what is cached and
 *   downloads what is missing. A second context loading the same model waits here for the
 *   first one's download, then finds everything cached and downloads nothing.
 *
 * Without `navigator.locks` (Node, old browsers) every lock is granted at once and nothing is
 * coordinated, as before.
 */
import { AbortError, throwIfAborted } from '../errors.js';

const PREFIX = 'pixtral-webgpu';

export const useLockName = (manifestHash: string) => `${PREFIX}:use:${manifestHash}`;
export const downloadLockName = (manifestHash: string) => `${PREFIX}:download:${manifestHash}`;

function lockManager(): LockManager | null {
  const l = typeof navigator !== 'undefined' ? (navigator as Navigator).locks : undefined;
  return l && typeof l.request === 'function' ? l : null;
}

function asAbort(e: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) {
    try {
      throwIfAborted(signal);
    } catch (a) {
      return a;
    }
  }
  return (e as { name?: string })?.name === 'AbortError' ? new AbortError() : e;
}

/** A held lock. `release()` is idempotent; its promise settles once the lock is free again. */
export interface LockHandle {
  release(): Promise<void>;
}

/**
 * Takes the shared `use` lock of a model and holds it until `release()`. Waits only while a
 * delete holds it exclusively; `signal` aborts the wait.
 */
export async function holdModel(manifestHash: string, signal?: AbortSignal): Promise<LockHandle> {
  const locks = lockManager();
  if (!locks) return { release: async () => {} };
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let freed!: Promise<void>;
  await new Promise<void>((acquired, failed) => {
    freed = locks
      .request(useLockName(manifestHash), { mode: 'shared', signal }, () => {
        acquired();
        return held;
      })
      .then(
        () => {},
        (e: unknown) => failed(asAbort(e, signal)),
      );
  });
  return {
    release() {
      release();
      return freed;
    },
  };
}

/** Runs `fn` holding the exclusive `download` lock of a model (waiting for another context's download). */
export async function whileDownloading<T>(manifestHash: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const locks = lockManager();
  if (!locks) return fn();
  try {
    return await locks.request(downloadLockName(manifestHash), { mode: 'exclusive', signal }, fn);
  } catch (e) {
    throw asAbort(e, signal);
  }
}

/** Returned by `ifUnused` when some context holds the model. */
export const IN_USE: unique symbol = Symbol('in use');

/**
 * Runs `fn` holding the `use` lock of a model exclusively, if no context (this one included)
 * holds it now; otherwise returns IN_USE at once without running `fn`.
 */
export async function ifUnused<T>(manifestHash: string, fn: () => Promise<T>): Promise<T | typeof IN_USE> {
  const locks = lockManager();
  if (!locks) return fn();
  return locks.request(useLockName(manifestHash), { mode: 'exclusive', ifAvailable: true }, (lock) => (lock ? fn() : IN_USE));
}
