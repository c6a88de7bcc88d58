/**
 * Stop-string detection over streamed text. Text that could still turn into a stop string is
 * held back, so a caller never sees part of a stop string and the emitted text is exactly the
 * generation cut before the first stop string.
 */

export class StopStringFilter {
  private pending = '';
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops) if (!s) throw new Error('stop strings must be non-empty');
  }

  get done(): boolean {
    return this.stopped;
  }

  /** Feeds new text; returns the text that is now safe to emit. */
  push(text: string): string {
    if (this.stopped) return '';
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return out;
    }
    // Hold back the longest suffix that is a prefix of some stop string.
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.pending.length); k > hold; k--) {
        if (this.pending.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return out;
  }

  /** End of generation without a stop string: whatever was held back is real text. */
  flush(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }
}
