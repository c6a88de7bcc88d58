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

  /**
   * Counts `buffer` as alive until its `destroy()` (wrapped on the instance, so every owner's
   * plain `buffer.destroy()` is seen; a second destroy is not counted twice).
   */
  track(buffer: GPUBuffer): GPUBuffer {
    const size = buffer.size;
    this.buffersCreated++;
    this.liveBytes += size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    const destroy = buffer.destroy.bind(buffer);
    let alive = true;
    buffer.destroy = () => {
      if (alive) {
        alive = false;
        this.liveBytes -= size;
      }
      destroy();
    };
    return buffer;
  }

  /** Starts a new peak from what is alive now. */
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }
}
