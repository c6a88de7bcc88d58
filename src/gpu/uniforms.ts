/**
 * Uniform arena: small per-dispatch parameter structs are written into a few large uniform
 * buffers at aligned offsets instead of one tiny buffer per dispatch. Offsets are recycled after
 * each queue submit (queue writes are ordered after earlier submits, so reuse is safe).
 */

const PAGE = 64 * 1024;

export interface UniformSlice {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export class UniformArena {
  private pages: GPUBuffer[] = [];
  private page = 0;
  private offset = 0;
  private readonly align: number;

  constructor(private readonly device: GPUDevice) {
    this.align = device.limits.minUniformBufferOffsetAlignment;
  }

  /** Copies `data` (a whole struct, 4-byte fields) into the arena and returns where it lives. */
  write(data: ArrayBuffer): UniformSlice {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    if (this.offset + size > PAGE) {
      this.page++;
      this.offset = 0;
    }
    if (this.page === this.pages.length) {
      this.pages.push(
        this.device.createBuffer({ label: 'uniform-arena', size: PAGE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
      );
    }
    const buffer = this.pages[this.page]!;
    const offset = this.offset;
    this.device.queue.writeBuffer(buffer, offset, data, 0, data.byteLength);
    this.offset = Math.ceil((offset + size) / this.align) * this.align;
    return { buffer, offset, size };
  }

  reset(): void {
    this.page = 0;
    this.offset = 0;
  }

  destroy(): void {
    for (const p of this.pages) p.destroy();
    this.pages = [];
  }
}
