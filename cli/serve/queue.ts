/**
 * One engine serves one request at a time; this bounds how many more may wait. `enter` either
 * admits a request (resolving when it is its turn, with a `leave` to call when done) or refuses
 * at once with `QueueFullError` (HTTP 429). A waiting request whose signal aborts (its client
 * went away) leaves the line without ever running.
 */
import { AbortError } from '../../src/errors.js';

export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`the server is busy: 1 request running and ${waiting} waiting (the queue's limit); retry later`);
  }
}

interface Waiter {
  admit: () => void;
  reject: (e: unknown) => void;
}

export class RequestQueue {
  private running = false;
  private readonly line: Waiter[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(readonly maxWaiting: number) {}

  get active(): number {
    return this.running ? 1 : 0;
  }

  get waiting(): number {
    return this.line.length;
  }

  /** Resolves with `leave` when the request may run; rejects with QueueFullError or AbortError. */
  enter(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortError());
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.next();
    };
    if (!this.running) {
      this.running = true;
      return Promise.resolve(leave);
    }
    if (this.line.length >= this.maxWaiting) return Promise.reject(new QueueFullError(this.line.length));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        admit: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(leave);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.line.indexOf(w);
        if (i >= 0) this.line.splice(i, 1);
        reject(new AbortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.line.push(w);
    });
  }

  private next(): void {
    const w = this.line.shift();
    if (w) w.admit();
    else {
      this.running = false;
      for (const f of this.idleWaiters.splice(0)) f();
    }
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (!this.running && !this.line.length) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
