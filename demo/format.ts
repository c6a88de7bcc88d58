/**
 * Small text formatters shared by the demo's panels: bytes, rates, durations, percentages.
 * Pure functions (no DOM), so every panel words sizes and times the same way.
 */

/** 1234567 -> "1.2 MB" (SI units, as storage quotas and downloads are usually counted). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Bytes per second -> "3.4 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Seconds -> "45 s", "3 min 20 s", "1 h 05 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** 0.1234 -> "12.3 %". */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return '?';
  return `${(Math.min(1, Math.max(0, fraction)) * 100).toFixed(1)} %`;
}

/** Tokens per second or milliseconds, rounded for display. */
export function formatNumber(v: number, digits = 1): string {
  if (!Number.isFinite(v)) return '?';
  return v >= 100 ? Math.round(v).toString() : v.toFixed(digits);
}
