/**
 * What the runtime counts on one device, for the benchmark's `dispatchesPerToken` and
 * `peakGpuBytes`: dispatches and submits recorded through `src/gpu/`, and the bytes of every GPU
 * buffer created through it that is still alive, with the peak. Counting is a few integer adds per
 * call; nothing is timed here.
 */

export class GpuLedger {
  /** Compute dispatches recorded (`dispatch` and replays of a recorded step). */
  dispatches = 0;
  /** Bind groups created by `dispatch` (it reuses one whenever the same buffers are bound). */
  bindGroupsCreated = 0;
  /** `queue.submit` calls made through `Gpu.submit`. */
  submits = 0;
  /** Bytes of tracked buffers not yet destroyed. */
  liveBytes = 0;
  /** Largest `liveBytes` since creation or the last `resetPeak`. */
  peakBytes = 0;
  /** Tracked buffers created. */
  buffersCreated = 0;
  /** Live bytes per kind of buffer (its label with digits as '#': `decoder.layers.#.q`). */
  private readonly liveByKind = new Map<string, number>();
  private peakByKind = new Map<string, number>();

  /**
   * Counts `buffer` as alive until its `destroy()` (wrapped on the instance, so every owner's
   * plain `buffer.destroy()` is seen; a second destroy is not counted twice).
   */
  track(buffer: GPUBuffer): GPUBuffer {
    const size = buffer.size;
    const kind = (buffer.label || '(no label)').replace(/\d+/g, '#');
    this.buffersCreated++;
    this.liveBytes += size;
    this.liveByKind.set(kind, (this.liveByKind.get(kind) ?? 0) + size);
    if (this.liveBytes > this.peakBytes) this.newPeak();
    const destroy = buffer.destroy.bind(buffer);
    let alive = true;
    buffer.destroy = () => {
      if (alive) {
        alive = false;
        this.liveBytes -= size;
        this.liveByKind.set(kind, this.liveByKind.get(kind)! - size);
      }
      destroy();
    };
    return buffer;
  }

  /** Starts a new peak from what is alive now. */
  resetPeak(): void {
    this.newPeak();
  }

  /** The `n` largest kinds of buffer alive at the peak, largest first: where the bytes went. */
  peakKinds(n = 12): { kind: string; bytes: number }[] {
    return [...this.peakByKind].filter(([, b]) => b > 0).sort((a, b) => b[1] - a[1]).slice(0, n).map(([kind, bytes]) => ({ kind, bytes }));
  }

  // A copy per new peak (tens of kinds; peaks rise while buffers are made at load, not per token).
  private newPeak(): void {
    this.peakBytes = this.liveBytes;
    this.peakByKind = new Map(this.liveByKind);
  }
}
