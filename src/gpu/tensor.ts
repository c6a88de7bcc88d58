/**
 * GPU tensors: a buffer with a shape and a dtype, plus upload and readback. A matrix whose bytes
 * exceed `maxStorageBufferBindingSize` (the real lm_head: 131072 x 5120) is held as row parts,
 * each its own buffer; kernels dispatch once per part with a row offset.
 */
import { LimitError, OutOfMemoryError } from '../errors.js';
import type { Gpu } from './device.js';
import { hostBufferFor, isHostBuffer } from './host-buffer.js';

/** Element types a buffer can hold. `q4` tensors are two buffers; see `src/quant/q4.ts`. */
export type DType = 'f32' | 'f16' | 'u32' | 'i32';

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, u32: 4, i32: 4 };

export type HostArray = Float32Array | Uint16Array | Uint32Array | Int32Array;

/**
 * Storage usage, read when a buffer is made, not at import: in Node the WebGPU globals appear
 * only when `installWebGPU` runs, which may be after this module was imported.
 */
function storageUsage(): GPUBufferUsageFlags {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** WebGPU buffer sizes must be multiples of 4. */
export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

export function createBuffer(gpu: Gpu, bytes: number, label: string, usage = storageUsage()): GPUBuffer {
  const size = Math.max(4, align4(bytes));
  if (size > gpu.limits.maxBufferSize) {
    throw new LimitError(`${label}: ${size} bytes exceed the adapter's maxBufferSize ${gpu.limits.maxBufferSize}`);
  }
  // A weight placed in host memory (see host-buffer.ts): typed as a GPUBuffer for the loaders.
  const host = hostBufferFor(gpu, label, size);
  if (host) return host as unknown as GPUBuffer;
  gpu.noteAllocation(label, size);
  try {
    return gpu.ledger.track(gpu.device.createBuffer({ label, size, usage }));
  } catch (e) {
    throw new OutOfMemoryError(size, `${label}: could not allocate ${size} bytes: ${(e as Error).message}`);
  }
}

export class Tensor {
  constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
  ) {}

  static empty(gpu: Gpu, shape: readonly number[], dtype: DType, label: string): Tensor {
    return new Tensor(gpu, createBuffer(gpu, numel(shape) * BYTES[dtype], label), shape, dtype, label);
  }

  static from(gpu: Gpu, data: HostArray, shape: readonly number[], dtype: DType, label: string): Tensor {
    if (data.byteLength !== numel(shape) * BYTES[dtype]) {
      throw new LimitError(`${label}: ${data.byteLength} bytes do not match shape [${shape}] ${dtype}`);
    }
    const t = Tensor.empty(gpu, shape, dtype, label);
    writeBuffer(gpu, t.buffer, 0, data);
    return t;
  }

  get numel(): number {
    return numel(this.shape);
  }

  /**
   * The same buffer seen with a smaller or reshaped shape starting at element 0: activations are
   * allocated once for the largest input and used as `x.view([T, D])` for the current one.
   */
  view(shape: readonly number[], label = this.label): Tensor {
    const capacity = Math.floor(this.buffer.size / BYTES[this.dtype]);
    if (numel(shape) > capacity) {
      throw new LimitError(`${this.label}: view [${shape}] exceeds the buffer's ${capacity} ${this.dtype} elements`);
    }
    return new Tensor(this.gpu, this.buffer, shape, this.dtype, label);
  }

  get byteLength(): number {
    return this.numel * BYTES[this.dtype];
  }

  async read(): Promise<HostArray> {
    const bytes = await readBuffer(this.gpu, this.buffer, 0, align4(this.byteLength));
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(bytes, 0, this.numel);
      case 'f16':
        return new Uint16Array(bytes, 0, this.numel);
      case 'u32':
        return new Uint32Array(bytes, 0, this.numel);
      case 'i32':
        return new Int32Array(bytes, 0, this.numel);
    }
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/** queue.writeBuffer needs a multiple of 4 bytes; pads odd-length f16 data. */
export function writeBuffer(gpu: Gpu, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (isHostBuffer(buffer)) {
    buffer.bytes.set(bytes, offset);
  } else if (bytes.byteLength % 4 === 0) {
    gpu.device.queue.writeBuffer(buffer, offset, bytes);
  } else {
    const padded = new Uint8Array(align4(bytes.byteLength));
    padded.set(bytes);
    gpu.device.queue.writeBuffer(buffer, offset, padded);
  }
}

/** Copies `size` bytes at `offset` to the CPU; rejects with DeviceLostError rather than hang. */
export async function readBuffer(gpu: Gpu, src: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
  const staging = gpu.ledger.track(
    gpu.device.createBuffer({ label: 'readback', size: align4(size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
  );
  try {
    const enc = gpu.device.createCommandEncoder({ label: 'readback' });
    enc.copyBufferToBuffer(src, offset, staging, 0, align4(size));
    gpu.submit([enc.finish()]);
    await Promise.race([staging.mapAsync(GPUMapMode.READ), gpu.lost.then((e) => Promise.reject(e))]);
    gpu.check();
    return staging.getMappedRange().slice(0, size);
  } finally {
    staging.destroy();
  }
}

/** A row range of a matrix living in its own buffer. */
export interface RowPart {
  rowStart: number;
  rows: number;
}

/**
 * Splits `rows` rows of `bytesPerRow` bytes into parts that each fit `maxBytes` (the binding
 * limit), with row counts that are multiples of `rowMultiple` (kernels' tile height).
 */
export function splitRows(rows: number, bytesPerRow: number, maxBytes: number, rowMultiple = 1): RowPart[] {
  let per = Math.floor(maxBytes / bytesPerRow / rowMultiple) * rowMultiple;
  if (per < 1) throw new LimitError(`one row of ${bytesPerRow} bytes exceeds the binding limit ${maxBytes}`);
  per = Math.min(per, rows);
  const parts: RowPart[] = [];
  for (let r = 0; r < rows; r += per) parts.push({ rowStart: r, rows: Math.min(per, rows - r) });
  return parts;
}
