/**
 * A GGUF pair on the GPU as the model code's `WeightMap`: every tensor the config needs, read by
 * range from its file (rows of q/k moved back from llama.cpp's interleaved order), kept in its
 * stored format. F32/F16 tensors become the engine's dense f32/f16 tensors (norms, biases, the
 * F16 vision tower and projector: the same bytes); block-quantised matrices stay in their ggml
 * blocks (`GgufWeight`, read by src/kernels/gguf.ts), as does a quantised embedding table.
 */
import { FormatError, throwIfAborted } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, Tensor, writeBuffer } from '../gpu/tensor.js';
import { isHostBuffer } from '../gpu/host-buffer.js';
import type { EmbeddingTable } from '../kernels/embedding.js';
import { destroyGgufWeight, uploadGgufWeight, type GgufWeight } from '../kernels/gguf.js';
import type { MatWeight } from '../kernels/matmul.js';
import type { LinearWeight } from '../model/linear.js';
import type { WeightMap } from '../model/weights.js';
import { supportedType } from './dequant.js';
import type { GgufModel, GgufTensorSource } from './mapping.js';
import type { ByteSource } from './source.js';
import { engineRowOrder, tensorsInSpans } from './tensor-data.js';

type Stored =
  | { kind: 'dense'; dtype: 'f32' | 'f16'; shape: number[]; parts: { buffer: GPUBuffer; rowStart: number; rows: number }[] }
  | { kind: 'gguf'; shape: number[]; w: GgufWeight };

export class GgufWeights implements WeightMap {
  private constructor(
    private readonly gpu: Gpu,
    private readonly stored: Map<string, Stored>,
  ) {}

  /**
   * Reads and uploads every tensor of `model` from its two sources, in file order, neighbours in
   * one read (`tensorsInSpans`). `onTensor` reports bytes read after each tensor (progress).
   * Aborts between tensors.
   */
  static async upload(
    gpu: Gpu,
    model: GgufModel,
    sources: { text: ByteSource; mmproj: ByteSource },
    opts: { signal?: AbortSignal; onTensor?: (t: GgufTensorSource, bytes: number) => void } = {},
  ): Promise<GgufWeights> {
    const stored = new Map<string, Stored>();
    const w = new GgufWeights(gpu, stored);
    try {
      for await (const { t, bytes: raw } of tensorsInSpans(sources, model.tensors, { signal: opts.signal })) {
        throwIfAborted(opts.signal);
        const bytes = engineRowOrder(t, raw);
        stored.set(t.name, store(gpu, t, bytes));
        opts.onTensor?.(t, bytes.byteLength);
      }
    } catch (e) {
      w.destroy();
      throw e;
    }
    return w;
  }

  /** GPU bytes held (tensors placed in host memory left out). */
  get byteLength(): number {
    let n = 0;
    const gpuBytes = (b: GPUBuffer) => (isHostBuffer(b) ? 0 : b.size);
    for (const s of this.stored.values()) {
      if (s.kind === 'dense') for (const p of s.parts) n += gpuBytes(p.buffer);
      else for (const p of s.w.parts) n += gpuBytes(p.data);
    }
    return n;
  }

  has(name: string): boolean {
    return this.stored.has(name);
  }

  private get(name: string): Stored {
    const s = this.stored.get(name);
    if (!s) throw new FormatError(`GGUF weights: no tensor ${name}`);
    return s;
  }

  shape(name: string): readonly number[] {
    return this.get(name).shape;
  }

  tensor(name: string): Tensor {
    const s = this.get(name);
    if (s.kind !== 'dense' || s.parts.length !== 1) throw new FormatError(`${name}: expected a dense F32/F16 tensor in one buffer`);
    return new Tensor(this.gpu, s.parts[0]!.buffer, s.shape, s.dtype, name);
  }

  matrix(name: string): LinearWeight {
    const s = this.get(name);
    if (s.kind === 'gguf') return { kind: 'gguf', w: s.w };
    const [rows, ...rest] = s.shape;
    const cols = rest.reduce((a, b) => a * b, 1);
    if (rows === undefined || !rest.length) throw new FormatError(`${name}: [${s.shape}] is not a matrix`);
    const w: MatWeight = { shape: [rows, cols], dtype: s.dtype, label: name, parts: s.parts };
    return { kind: 'dense', w };
  }

  table(name: string): EmbeddingTable {
    const s = this.get(name);
    const [rows, cols] = s.shape as [number, number];
    if (s.kind === 'gguf') {
      return { dtype: 'gguf', blockType: s.w.type, rows, cols, parts: s.w.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, data: p.data })) };
    }
    return { dtype: s.dtype, rows, cols, parts: s.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, data: p.buffer })) };
  }

  destroy(): void {
    for (const s of this.stored.values()) {
      if (s.kind === 'dense') s.parts.forEach((p) => p.buffer.destroy());
      else destroyGgufWeight(s.w);
    }
    this.stored.clear();
  }
}

function store(gpu: Gpu, t: GgufTensorSource, bytes: Uint8Array): Stored {
  const type = supportedType(t.info.type, `${t.info.name} (${t.name})`);
  const rows = t.shape[0]!;
  const cols = t.shape.slice(1).reduce((a, b) => a * b, 1);
  if (type === 'F32' || type === 'F16') {
    const rowBytes = (bytes.byteLength / rows) | 0;
    // Dense parts start on 4-byte boundaries (writeBuffer): an even row count for odd f16 rows.
    const mult = rowBytes % 4 === 0 ? 1 : 2;
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const parts = (bytes.byteLength <= limit ? [{ rowStart: 0, rows }] : splitRows(rows, rowBytes, limit, mult)).map((p, i) => {
      const buffer = createBuffer(gpu, p.rows * rowBytes, `${t.name}[${i}]`);
      writeBuffer(gpu, buffer, 0, bytes.subarray(p.rowStart * rowBytes, (p.rowStart + p.rows) * rowBytes));
      return { buffer, ...p };
    });
    return { kind: 'dense', dtype: type === 'F32' ? 'f32' : 'f16', shape: t.shape, parts };
  }
  if (t.shape.length !== 2) throw new FormatError(`${t.info.name}: a ${type} tensor of shape [${t.info.shape}] is not a matrix`);
  return { kind: 'gguf', shape: t.shape, w: uploadGgufWeight(gpu, type, rows, cols, bytes, t.name) };
}
