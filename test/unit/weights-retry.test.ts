import { describe, expect, it } from 'vitest';
import { AbortError } from '../../src/errors.js';
import { backoffDelay, DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, sleep } from '../../src/weights/retry.js';
import { checkQuota, quotaMargin, QUOTA_MARGIN_MIN_BYTES } from '../../src/weights/quota.js';

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
    expect(DEFAULT_RETRY.retries).toBeGreaterThan(0);
  });

  it('sleep rejects with AbortError as soon as the signal aborts', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = sleep(10_000, ac.signal);
    setTimeout(() => ac.abort(), 10);
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(Date.now() - t0).toBeLessThan(1000);
    await expect(sleep(1, ac.signal)).rejects.toBeInstanceOf(AbortError);
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

  it('passes when nothing is needed or the browser gives no estimate', () => {
    expect(checkQuota(0, { quota: 0, usage: 0 }).ok).toBe(true);
    expect(checkQuota(1e9, {}).ok).toBe(true);
    expect(checkQuota(1e9, null).ok).toBe(true);
  });
});
