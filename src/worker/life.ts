/**
 * Noticing a worker that stopped. A dedicated worker that crashes, calls `close()` or is
 * terminated sends nothing more, so a pending comlink call would wait forever. The worker holds a
 * Web Lock named after itself for its whole life and says so once; the main thread then asks for
 * the same lock, which the browser grants only when the worker's agent is gone. Without Web Locks
 * (insecure contexts) nothing is watched.
 */
import { DisposedError } from '../errors.js';

const ALIVE = 'pixtral-webgpu:holds-life-lock';

/** A name unique to one worker: its Web Lock's name too. */
export function workerLifeName(): string {
  // randomUUID needs a secure context; the name only has to be unique within this page.
  const id = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `pixtral-webgpu ${id}`;
}

/** Worker side: takes the lock named `name` and keeps it until the worker stops. */
export function holdWorkerLife(name: string): void {
  const locks = globalThis.navigator?.locks;
  if (!locks || !name) return;
  void locks.request(name, () => {
    postMessage({ [ALIVE]: name });
    return new Promise<never>(() => {});
  });
}

/** Main side: resolves with a `DisposedError` once the worker named `name` has stopped. */
export function watchWorkerLife(worker: Worker, name: string): Promise<DisposedError> {
  return new Promise((resolve) => {
    const locks = globalThis.navigator?.locks;
    if (!locks) return;
    const onMessage = (e: MessageEvent) => {
      if ((e.data as Record<string, unknown> | null)?.[ALIVE] !== name) return;
      worker.removeEventListener('message', onMessage);
      void locks.request(name, () => {
        resolve(new DisposedError('model', 'the pixtral-webgpu worker stopped (it crashed, closed itself or was terminated): load the model again'));
      });
    };
    worker.addEventListener('message', onMessage);
  });
}
