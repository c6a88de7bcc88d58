import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortError } from '../../src/errors.js';
import { backoffDelay, DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, sleep } from '../../src/weights/retry.js';
import { checkQuota, estimateStorage, quotaMargin, QUOTA_MARGIN_MIN_BYTES } from '../../src/weights/quota.js';

describe('retry policy', () => {
  it('doubles the delay per retry, jittered into [half, full), capped', () => {
    const p = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, p, () => 0.999999))).toEqual([100, 200, 400, 800, 1000].map((v) => expect.closeTo(v, 0)));
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, p, () => 0))).toEqual([50, 100, 200, 400, 500]);
  });

  it('honours Retry-After up to the cap', () => {
    const p = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, p, () => 0, 700)).toBe(700);
    expect(backoffDelay(0, p, () => 0, 60_000)).toBe(1000);
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });

  it('retries server errors and rate limits, not 404 or other client errors', () => {
    expect([500, 502, 503, 504, 429, 408].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 410].some(isRetryableStatus)).toBe(false);
  });

  it('the default policy spreads its retries over seconds, not minutes (jitter at its ceiling)', () => {
    const waits = Array.from({ length: DEFAULT_RETRY.retries }, (_, a) => backoffDelay(a, DEFAULT_RETRY, () => 0.999999));
    expect(waits.map(Math.round)).toEqual([500, 1000, 2000, 4000]);
  });

  describe('sleep (on a fake clock)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('resolves after exactly its delay', async () => {
      vi.useFakeTimers();
      let done = false;
      const p = sleep(10_000).then(() => (done = true));
      await vi.advanceTimersByTimeAsync(9_999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await p;
      expect(done).toBe(true);
    });

    it('rejects with AbortError when the signal aborts, with no time passing, and keeps the reason', async () => {
      vi.useFakeTimers();
      const ac = new AbortController();
      const p = sleep(10_000, ac.signal);
      ac.abort(new Error('user left'));
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortError);
      expect((err as Error).message).toBe('aborted: user left'); // abortError(): the reason in the message, and as its cause
      expect(((err as Error).cause as Error).message).toBe('user left');
      expect(vi.getTimerCount()).toBe(0); // the timer is cleared, nothing fires later
      await expect(sleep(1, ac.signal)).rejects.toBeInstanceOf(AbortError);
    });
  });
});

describe('quota arithmetic', () => {
  it('needs the bytes plus a margin of 5%, at least 16 MiB', () => {
    expect(quotaMargin(1000)).toBe(QUOTA_MARGIN_MIN_BYTES);
    expect(quotaMargin(10e9)).toBe(5e8);
    const need = 1e9 + 5e7;
    expect(checkQuota(1e9, { quota: 2e9, usage: 2e9 - need })).toEqual({ ok: true, neededBytes: need, availableBytes: need });
    expect(checkQuota(1e9, { quota: 2e9, usage: 2e9 - need + 1 })).toEqual({ ok: false, neededBytes: need, availableBytes: need - 1 });
  });

  it('passes when nothing is needed or the browser gives no estimate, saying the free space is unknown', () => {
    expect(checkQuota(0, { quota: 0, usage: 0 })).toEqual({ ok: true, neededBytes: 0, availableBytes: 0 });
    for (const est of [{}, null, { quota: 1e9 }, { quota: Number.NaN, usage: 0 }]) {
      expect(checkQuota(1e9, est)).toEqual({ ok: true, neededBytes: 1e9 + 5e7, availableBytes: null });
    }
  });

  it('estimateStorage says why there is no estimate', async () => {
    expect(await estimateStorage(null)).toEqual({ unavailable: 'navigator.storage is not available' });
    expect(await estimateStorage({ estimate: () => Promise.reject(new Error('SecurityError')) })).toEqual({
      unavailable: 'navigator.storage.estimate() failed: SecurityError',
    });
    expect(await estimateStorage({ estimate: async () => ({}) })).toEqual({ unavailable: 'navigator.storage.estimate() gave no quota/usage ({})' });
    expect(await estimateStorage({ estimate: async () => ({ quota: 10, usage: 4 }) })).toEqual({ est: { quota: 10, usage: 4 } });
  });
});
