/**
 * Progress on stderr for the CLI commands: model load progress (bytes, rate, ETA; only while
 * downloading, i.e. for URLs) and the batch bar of `ask --each` (`cli-progress`; none on a
 * non-TTY, where a log line per file would only clutter a captured stderr).
 */
import cliProgress from 'cli-progress';
import { formatBytes } from '../src/errors.js';
import type { LoadProgress } from '../src/weights/progress.js';

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** One line per event for download phases: `download 12.0 MB / 70.0 MB 5.1 MB/s ETA 11s`. */
export function formatLoadProgress(p: LoadProgress): string {
  const rate = p.bytesPerSecond;
  const left = p.totalBytes - p.loadedBytes;
  return `${p.phase} ${formatBytes(p.loadedBytes)} / ${formatBytes(p.totalBytes)} ${formatBytes(rate)}/s ETA ${rate > 0 ? eta(left / rate) : '?'}`;
}

/** An onProgress printer for model loads: shows download/verify events only (URLs), throttled. */
export function loadProgressPrinter(stream: NodeJS.WriteStream = process.stderr): { onProgress: (p: LoadProgress) => void; end: () => void } {
  const tty = stream.isTTY;
  let last = 0;
  let shown = false;
  return {
    onProgress: (p) => {
      if (p.phase !== 'download' && p.phase !== 'verify') return;
      const now = performance.now();
      if (now - last < (tty ? 200 : 2000) && p.loadedBytes < p.totalBytes) return;
      last = now;
      shown = true;
      const line = formatLoadProgress(p);
      stream.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    },
    end: () => {
      if (shown && tty) stream.write('\n');
    },
  };
}

/** The batch bar: counts, rate (files/s), ETA, answered and failed counts. No-op on a non-TTY. */
export class BatchBar {
  private readonly bar: cliProgress.SingleBar | null;

  constructor(total: number, enabled: boolean) {
    this.bar = enabled
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: '{bar} {value}/{total} files | {rate}/s | ETA {eta_formatted} | ok {ok} failed {failed}',
            etaBuffer: 20,
            hideCursor: true,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
    this.bar?.start(total, 0, { ok: 0, failed: 0, rate: '0.00' });
    this.t0 = performance.now();
  }

  private readonly t0: number;

  update(done: number, ok: number, failed: number): void {
    const rate = done / Math.max((performance.now() - this.t0) / 1000, 1e-3);
    this.bar?.update(done, { ok, failed, rate: rate.toFixed(2) });
  }

  stop(): void {
    this.bar?.stop();
  }
}
