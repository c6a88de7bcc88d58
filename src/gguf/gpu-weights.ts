/**
 * A GGUF pair on the GPU as the model code's `WeightMap`: every tensor the config needs, read by
 * range from its file (rows of q/k moved back from llama.cpp's interleaved order), kept in its
 * stored format. F32/F16 tensors become the engine's dense f32/f16 tensors (norms, biases, the
 * F16 vision tower and projector: the same bytes); block-quantised matrices stay in their ggml
 * blocks (`GgufWeight`, read by src/kernels/gguf.ts), as does a quantised embedding table.
 * A decoder layer's q, k, v (and its gate, up) projections of one block type are stored back to
 * back in one buffer (`packGgufWeights`), so that one decode dispatch reads them as one weight.
 */
import { FormatError, throwIfAborted } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { createBuffer, splitRows, Tensor, writeBuffer } from '../gpu/tensor.js';
import { isHostBuffer } from '../gpu/host-buffer.js';
import type { EmbeddingTable } from '../kernels/embedding.js';
import { destroyGgufWeight, packGgufWeights, uploadGgufWeight, type GgufWeight } from '../kernels/gguf.js';
import type { MatWeight } from '../kernels/matmul.js';
import type { LinearWeight } from '../model/linear.js';
import type { WeightMap } from '../model/weights.js';
import { supportedType } from './dequant.js';
import { GGML_TYPE, SUPPORTED_TYPES, type SupportedType } from './types.js';
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
      const packed = packProjections(gpu, model.tensors, stored);
      for await (const { t, bytes: raw } of tensorsInSpans(sources, model.tensors, { signal: opts.signal })) {
        throwIfAborted(opts.signal);
        const bytes = engineRowOrder(t, raw);
        const slot = packed.get(t.name);
        if (slot) slot.write(bytes);
        else stored.set(t.name, store(gpu, t, bytes));
        opts.onTensor?.(t, bytes.byteLength);
      }
    } catch (e) {
      w.destroy();
      throw e;
    }
    return w;
  }

  /** GPU bytes held (tensors placed in host memory left out; a packed buffer counted once). */
  get byteLength(): number {
    const buffers = new Set<GPUBuffer>();
    for (const s of this.stored.values()) {
      if (s.kind === 'dense') for (const p of s.parts) buffers.add(p.buffer);
      else for (const p of s.w.parts) buffers.add(p.data);
    }
    let n = 0;
    for (const b of buffers) n += isHostBuffer(b) ? 0 : b.size;
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

/** A decoder layer's projections that may share one buffer, in the order they are stored in it. */
const PACKABLE: { pattern: RegExp; members: string[] }[] = [
  { pattern: /^(language_model\..+)\.self_attn\.(q|k|v)_proj\.weight$/, members: ['q', 'k', 'v'] },
  { pattern: /^(language_model\..+)\.mlp\.(gate|up)_proj\.weight$/, members: ['gate', 'up'] },
];

/**
 * Plans and allocates the packed buffers: per layer, each run of adjacent members (q, k, v; gate,
 * up) of one block type and width becomes one buffer (Q4_K_M's Q6_K v stays alone, q|k share one).
 * Their weights go into `stored` at once; the map returned says where each member's bytes go.
 */
function packProjections(gpu: Gpu, tensors: readonly GgufTensorSource[], stored: Map<string, Stored>): Map<string, { write(bytes: Uint8Array): void }> {
  // A block-quantised matrix's type (an unsupported one is left to `store` to refuse).
  const blockType = (t: GgufTensorSource): SupportedType | null => {
    const name = SUPPORTED_TYPES.find((n) => GGML_TYPE[n] === t.info.type);
    return name && name !== 'F32' && name !== 'F16' && t.shape.length === 2 ? name : null;
  };
  const families = new Map<string, (GgufTensorSource | undefined)[]>();
  for (const t of tensors) {
    for (const { pattern, members } of PACKABLE) {
      const m = pattern.exec(t.name);
      if (!m) continue;
      const key = `${m[1]}|${members.join('')}`;
      const slots = families.get(key) ?? new Array<GgufTensorSource | undefined>(members.length).fill(undefined);
      slots[members.indexOf(m[2]!)] = t;
      families.set(key, slots);
    }
  }
  const out = new Map<string, { write(bytes: Uint8Array): void }>();
  for (const slots of families.values()) {
    let i = 0;
    while (i < slots.length) {
      const first = slots[i];
      const type = first ? blockType(first) : null;
      let j = i + 1;
      while (j < slots.length && type && slots[j] && blockType(slots[j]!) === type && slots[j]!.shape[1] === first!.shape[1]) j++;
      const run = slots.slice(i, j) as GgufTensorSource[];
      i = j;
      if (run.length < 2 || !type) continue;
      const label = run.map((t) => t.name).join('|');
      const pack = packGgufWeights(gpu, type, first!.shape[1]!, run.map((t) => ({ rows: t.shape[0]!, label: t.name })), label);
      if (!pack) continue;
      run.forEach((t, k) => {
        stored.set(t.name, { kind: 'gguf', shape: t.shape, w: pack.weights[k]! });
        out.set(t.name, { write: (bytes) => pack.write(k, bytes) });
      });
    }
  }
  return out;
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
