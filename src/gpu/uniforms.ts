/**
 * Uniform arena: small per-dispatch parameter structs are packed into a few large uniform
 * buffers at aligned offsets instead of one tiny buffer per dispatch. Structs are staged in a
 * CPU copy of each page and reach the GPU in one `queue.writeBuffer` per used page at the next
 * submit (`flush`), so a decode step writes its per-step values once, not once per dispatch.
 * Offsets restart after each submit (queue writes are ordered after earlier submits, so reuse is
 * safe); the same sequence of dispatches therefore gets the same slices every step, which lets
 * `dispatch` reuse its bind groups.
 */
import type { GpuLedger } from './ledger.js';

const PAGE = 64 * 1024;

export interface UniformSlice {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

interface Page {
  buffer: GPUBuffer;
  /** CPU copy of the structs written since the last flush. */
  shadow: Uint8Array<ArrayBuffer>;
  /** `shadow` as a DataView: `reserve` hands it out so a struct is written in place. */
  view: DataView;
  /** Bytes [0, dirty) of `shadow` go to the GPU at the next flush. */
  dirty: number;
}

export class UniformArena {
  private pages: Page[] = [];
  private page = 0;
  private offset = 0;
  private readonly align: number;

  constructor(
    private readonly device: GPUDevice,
    private readonly ledger?: GpuLedger,
  ) {
    this.align = device.limits.minUniformBufferOffsetAlignment;
  }

  /**
   * Room for a struct of `bytes` (4-byte fields), zeroed: the caller writes its fields into
   * `view` at `slice.offset` (what `dispatch` does, with no allocation per dispatch).
   */
  reserve(bytes: number): { slice: UniformSlice; view: DataView } {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (this.offset + size > PAGE) {
      this.page++;
      this.offset = 0;
    }
    if (this.page === this.pages.length) {
      const buffer = this.device.createBuffer({ label: 'uniform-arena', size: PAGE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      const shadow = new Uint8Array(PAGE);
      this.pages.push({ buffer: this.ledger ? this.ledger.track(buffer) : buffer, shadow, view: new DataView(shadow.buffer), dirty: 0 });
    }
    const p = this.pages[this.page]!;
    const offset = this.offset;
    p.shadow.fill(0, offset, offset + size);
    p.dirty = Math.max(p.dirty, offset + size);
    this.offset = Math.ceil((offset + size) / this.align) * this.align;
    return { slice: { buffer: p.buffer, offset, size }, view: p.view };
  }

  /** Sends the structs written since the last flush: one queue write per used page. */
  flush(): void {
    for (const p of this.pages) {
      if (!p.dirty) continue;
      this.device.queue.writeBuffer(p.buffer, 0, p.shadow, 0, p.dirty);
      p.dirty = 0;
    }
  }

  reset(): void {
    this.page = 0;
    this.offset = 0;
  }

  destroy(): void {
    for (const p of this.pages) p.buffer.destroy();
    this.pages = [];
  }
}
