import { describe, expect, it, vi } from 'vitest';
import { containProgress, ProgressTracker, type LoadProgress, type ProgressCallback } from '../../src/weights/progress.js';

function tracker(intervalMs = 0) {
  let t = 0;
  const events: LoadProgress[] = [];
  const p = new ProgressTracker({ totalBytes: 1000, shardCount: 2, onProgress: (e) => events.push(e), intervalMs, now: () => t });
  return { p, events, tick: (ms: number) => (t += ms) };
}

describe('ProgressTracker', () => {
  it('holds the mark of a retried file until the new attempt passes it', () => {
    const { p, events, tick } = tracker();
    p.chunk(0, 300, 300, 600);
    tick(10);
    p.chunk(0, 100, 100, 600); // retry restarted the file
    expect(events.at(-1)!.loadedBytes).toBe(300);
    tick(10);
    p.chunk(0, 450, 350, 600);
    expect(events.at(-1)!.loadedBytes).toBe(450);
    p.commit(0, 600);
    expect(events.at(-1)!.loadedBytes).toBe(600);
  });

  it('adds cached files and concurrent in-flight files, never above the total', () => {
    const { p, events } = tracker();
    p.cached(1, 400);
    p.chunk(0, 200, 200, 600);
    expect(events.map((e) => [e.phase, e.loadedBytes])).toEqual([['cached', 400], ['download', 600]]);
    p.chunk(0, 700, 500, 600); // more bytes than the file has: clamped to the file
    expect(events.at(-1)!.loadedBytes).toBe(1000);
    p.phase('done');
    expect(events.at(-1)).toMatchObject({ phase: 'done', loadedBytes: 1000, totalBytes: 1000, bytesPerSecond: 0 });
  });

  it('throttles chunk events but never phase changes or commits', () => {
    const { p, events, tick } = tracker(50);
    p.chunk(0, 10, 10, 600);
    tick(10);
    p.chunk(0, 20, 10, 600); // within 50 ms: dropped
    tick(45);
    p.chunk(0, 30, 10, 600);
    tick(1);
    p.phase('verify', 0);
    p.commit(0, 600);
    expect(events.map((e) => e.phase)).toEqual(['download', 'download', 'verify', 'download']);
    expect(events.map((e) => e.loadedBytes)).toEqual([10, 30, 30, 600]);
  });

  it('measures throughput over a sliding window', () => {
    const { p, events, tick } = tracker();
    p.chunk(0, 100, 100, 600);
    tick(1000);
    p.chunk(0, 200, 100, 600);
    // 200 bytes over 1 s
    expect(events.at(-1)!.bytesPerSecond).toBeCloseTo(200, 6);
    tick(5000);
    expect(p.bytesPerSecond()).toBe(0); // everything fell out of the 3 s window
  });
});

describe('containProgress (an onProgress that throws)', () => {
  it('keeps the load going: the throw stays inside, the callback is not called again, the error is logged once', () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      let calls = 0;
      const cb = () => {
        calls++;
        throw new Error('UI gone');
      };
      let t = 0;
      const p = new ProgressTracker({ totalBytes: 100, shardCount: 1, onProgress: cb, intervalMs: 0, now: () => t++ });
      p.phase('download');
      p.chunk(0, 50, 50, 100);
      p.commit(0, 100);
      p.phase('done');
      expect(calls).toBe(1);
      expect(errors).toHaveBeenCalledTimes(1);
      expect(String(errors.mock.calls[0]![1])).toContain('UI gone');
      expect(p.loadedBytes).toBe(100);
      // The download and the GPU upload wrap the same callback: they share its state.
      expect(containProgress(cb)).toBe(containProgress(cb));
    } finally {
      errors.mockRestore();
    }
  });

  it('a callback whose promise rejects (a Comlink proxy) gives no unhandled rejection', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const cb = containProgress((() => Promise.reject(new Error('main thread threw'))) as unknown as ProgressCallback)!;
      cb({ phase: 'download', loadedBytes: 1, totalBytes: 2, shardIndex: 0, shardCount: 1, bytesPerSecond: 0 });
      await new Promise((r) => setTimeout(r, 10));
      expect(unhandled).toEqual([]);
      expect(errors).toHaveBeenCalledTimes(1);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      errors.mockRestore();
    }
  });

  it('carries a warning on a phase event', () => {
    const { p, events } = tracker();
    p.phase('download', -1, 'no storage estimate');
    expect(events.at(-1)).toMatchObject({ phase: 'download', warning: 'no storage estimate' });
    p.chunk(0, 10, 10, 600);
    expect(events.at(-1)).not.toHaveProperty('warning');
  });
});
