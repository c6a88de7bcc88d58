/**
 * Storage-quota arithmetic: is there room for the bytes still to download, with a safety margin
 * (IndexedDB stores values with some overhead, and other origins' data and the browser's own
 * eviction heuristics make the estimate approximate). Pure logic, unit-tested in Node.
 */

export interface StorageEstimateLike {
  quota?: number;
  usage?: number;
}

/** What the loader needs of `navigator.storage`; tests inject a fake `estimate`. */
export interface StorageLike {
  estimate(): Promise<StorageEstimateLike>;
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
}

/** Margin: 5% of the bytes to store, at least 16 MiB. */
export const QUOTA_MARGIN_FRACTION = 0.05;
export const QUOTA_MARGIN_MIN_BYTES = 16 * 2 ** 20;

export function quotaMargin(bytes: number): number {
  return Math.max(QUOTA_MARGIN_MIN_BYTES, Math.ceil(bytes * QUOTA_MARGIN_FRACTION));
}

export interface QuotaCheck {
  ok: boolean;
  /** Bytes to store plus the margin. */
  neededBytes: number;
  /** `quota - usage`, or Infinity when the browser gives no estimate. */
  availableBytes: number;
}

/** Compares the bytes still to store (plus margin) with the estimate's free space. */
export function checkQuota(bytesToStore: number, est: StorageEstimateLike | null | undefined): QuotaCheck {
  if (bytesToStore <= 0) return { ok: true, neededBytes: 0, availableBytes: Infinity };
  const neededBytes = bytesToStore + quotaMargin(bytesToStore);
  if (!est || typeof est.quota !== 'number' || !Number.isFinite(est.quota)) {
    return { ok: true, neededBytes, availableBytes: Infinity };
  }
  const availableBytes = Math.max(0, est.quota - (est.usage ?? 0));
  return { ok: neededBytes <= availableBytes, neededBytes, availableBytes };
}

/** `navigator.storage` when it exists (browsers, secure contexts), else null. */
export function defaultStorage(): StorageLike | null {
  const s = typeof navigator !== 'undefined' ? (navigator as Navigator).storage : undefined;
  return s && typeof s.estimate === 'function' ? s : null;
}
