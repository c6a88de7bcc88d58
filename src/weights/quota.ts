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
  /** `quota - usage`, or null when the browser gives no usable estimate (then `ok` is true). */
  availableBytes: number | null;
}

/** Compares the bytes still to store (plus margin) with the estimate's free space. */
export function checkQuota(bytesToStore: number, est: StorageEstimateLike | null | undefined): QuotaCheck {
  const neededBytes = bytesToStore <= 0 ? 0 : bytesToStore + quotaMargin(bytesToStore);
  const availableBytes = freeBytes(est);
  if (bytesToStore <= 0 || availableBytes === null) return { ok: true, neededBytes, availableBytes };
  return { ok: neededBytes <= availableBytes, neededBytes, availableBytes };
}

/** `quota - usage` of an estimate, or null when either number is missing or not finite. */
export function freeBytes(est: StorageEstimateLike | null | undefined): number | null {
  if (!est || typeof est.quota !== 'number' || !Number.isFinite(est.quota)) return null;
  if (typeof est.usage !== 'number' || !Number.isFinite(est.usage)) return null;
  return Math.max(0, est.quota - est.usage);
}

/**
 * `storage.estimate()`, or why there is none: no `navigator.storage` (insecure context, old
 * browser), the call failed, or it returned no numbers.
 */
export async function estimateStorage(storage: StorageLike | null): Promise<{ est: StorageEstimateLike } | { unavailable: string }> {
  if (!storage) return { unavailable: 'navigator.storage is not available' };
  let est: StorageEstimateLike;
  try {
    est = await storage.estimate();
  } catch (e) {
    return { unavailable: `navigator.storage.estimate() failed: ${(e as Error)?.message ?? String(e)}` };
  }
  if (freeBytes(est) === null) return { unavailable: `navigator.storage.estimate() gave no quota/usage (${JSON.stringify(est ?? null)})` };
  return { est };
}

/** `navigator.storage` when it exists (browsers, secure contexts), else null. */
export function defaultStorage(): StorageLike | null {
  const s = typeof navigator !== 'undefined' ? (navigator as Navigator).storage : undefined;
  return s && typeof s.estimate === 'function' ? s : null;
}
