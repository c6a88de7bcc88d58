/**
 * A `WeightMap` of random weights generated on the GPU for any `ModelConfig`: the decoder's
 * linears, embedding and lm_head in q4 (or dense), the vision encoder and projector dense f16.
 * For benchmarks at real shapes (Pixtral-12B is 24 GB of checkpoint that never reaches CI) and
 * for checking what an adapter can hold; the numbers it produces are timings, not answers.
 * A tensor placed in host memory (`placeOnHost`, the `visionWeights: 'host'` mode) is filled on
 * the CPU instead, with the same distribution.
 */
import type { ModelConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import { record } from '../gpu/kernel.js';
import { createBuffer, splitRows, Tensor } from '../gpu/tensor.js';
import { isHostBuffer, type HostBuffer } from '../gpu/host-buffer.js';
import { f32ToF16Bits } from '../util/f16.js';
import { FormatError } from '../errors.js';
import { fillRandom } from '../kernels/fill.js';
import type { EmbeddingTable } from '../kernels/embedding.js';
import { Q4_GROUP } from '../quant/q4.js';
import { expectedTensors, type ExpectedTensor } from '../weights/tensor-set.js';
import type { LinearWeight } from './linear.js';
import type { WeightMap } from './weights.js';

export interface RandomWeightOptions {
  /** Storage of decoder linears, embedding and lm_head. Default q4. */
  decoder?: 'q4' | 'f16' | 'f32';
  seed?: number;
}

interface Part {
  rowStart: number;
  rows: number;
  data: GPUBuffer;
  scales?: GPUBuffer;
}

export class RandomWeights implements WeightMap {
  private readonly specs: Map<string, ExpectedTensor>;
  private readonly made = new Map<string, { dtype: 'q4' | 'f16' | 'f32'; parts: Part[] }>();
  private seed: number;
  /** GPU bytes allocated so far (host-placed tensors left out). */
  bytes = 0;

  constructor(
    private readonly gpu: Gpu,
    readonly config: ModelConfig,
    private readonly opts: RandomWeightOptions = {},
  ) {
    this.specs = new Map(expectedTensors(config).map((t) => [t.name, t]));
    this.seed = opts.seed ?? 1;
  }

  has(name: string): boolean {
    const s = this.specs.get(name);
    return !!s && !(s.optional && s.role === 'lm-head');
  }

  shape(name: string): readonly number[] {
    return this.spec(name).shape;
  }

  tensor(name: string): Tensor {
    const s = this.spec(name);
    const t = this.make(s);
    return new Tensor(this.gpu, t.parts[0]!.data, s.shape, t.dtype === 'q4' ? 'f32' : t.dtype, name);
  }

  matrix(name: string): LinearWeight {
    const s = this.spec(name);
    const t = this.make(s);
    const rows = s.shape[0]!;
    const cols = s.shape.slice(1).reduce((a, b) => a * b, 1);
    if (t.dtype === 'q4') {
      return { kind: 'q4', w: { rows, cols, label: name, parts: t.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, qweight: p.data, scales: p.scales! })) } };
    }
    return { kind: 'dense', w: { shape: [rows, cols], dtype: t.dtype, label: name, parts: t.parts.map((p) => ({ buffer: p.data, rowStart: p.rowStart, rows: p.rows })) } };
  }

  table(name: string): EmbeddingTable {
    const s = this.spec(name);
    const t = this.make(s);
    return { dtype: t.dtype, rows: s.shape[0]!, cols: s.shape[1]!, parts: t.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, data: p.data, scales: p.scales })) };
  }

  destroy(): void {
    for (const t of this.made.values()) for (const p of t.parts) {
      p.data.destroy();
      p.scales?.destroy();
    }
    this.made.clear();
  }

  private spec(name: string): ExpectedTensor {
    const s = this.specs.get(name);
    if (!s) throw new FormatError(`random weights: no tensor "${name}" in this config`);
    return s;
  }

  private dtypeOf(s: ExpectedTensor): 'q4' | 'f16' | 'f32' {
    if (s.role === 'norm' || s.role === 'bias') return 'f32';
    if (s.role === 'vision') return 'f16';
    const d = this.opts.decoder ?? 'q4';
    const cols = s.shape.slice(1).reduce((a, b) => a * b, 1);
    return d === 'q4' && cols % Q4_GROUP ? 'f16' : d;
  }

  private make(s: ExpectedTensor): { dtype: 'q4' | 'f16' | 'f32'; parts: Part[] } {
    const hit = this.made.get(s.name);
    if (hit) return hit;
    const dtype = this.dtypeOf(s);
    const rows = s.shape[0]!;
    const cols = s.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = dtype === 'q4' ? cols / 2 : cols * (dtype === 'f16' ? 2 : 4);
    const limit = Math.min(this.gpu.limits.maxStorageBufferBindingSize, this.gpu.limits.maxBufferSize);
    const parts: Part[] = splitRows(rows, rowBytes, limit, 2).map((p) => {
      const data = createBuffer(this.gpu, p.rows * rowBytes, `${s.name}[${p.rowStart}]`);
      const scales = dtype === 'q4' ? createBuffer(this.gpu, (p.rows * cols * 2) / Q4_GROUP, `${s.name}.scales[${p.rowStart}]`) : undefined;
      if (!isHostBuffer(data)) this.bytes += data.size + (scales?.size ?? 0);
      return { rowStart: p.rowStart, rows: p.rows, data, scales };
    });
    // Scales keep activations O(1): weights ~ U(-1, 1) / sqrt(fan-in) in effect.
    const amp = 1 / Math.sqrt(cols);
    const host = parts.filter((p) => isHostBuffer(p.data));
    for (const p of host) {
      if (dtype === 'q4') throw new FormatError(`random weights: ${s.name} is q4, which host placement does not fill`);
      fillHostRandom(p.data as unknown as HostBuffer, p.rows * cols, dtype, this.seed++, s.role === 'norm' ? 1 : amp);
    }
    if (host.length < parts.length) record(this.gpu, 'random-weights', (ctx) => {
      for (const p of parts) {
        const seed = this.seed++;
        if (dtype === 'q4') {
          fillRandom(ctx, p.data, (p.rows * cols) / 8, 'bits', seed);
          fillRandom(ctx, p.scales!, (p.rows * cols) / Q4_GROUP / 2, 'f16pair', seed ^ 0x5bd1e995, amp / 4);
        } else if (dtype === 'f16') {
          fillRandom(ctx, p.data, Math.ceil((p.rows * cols) / 2), 'f16pair', seed, s.role === 'norm' ? 1 : amp);
        } else {
          fillRandom(ctx, p.data, p.rows * cols, 'f32', seed, s.role === 'norm' ? 1 : amp);
        }
      }
    });
    const t = { dtype, parts };
    this.made.set(s.name, t);
    return t;
  }
}

/** Fills `n` f16/f32 values of a host-placed buffer with U(-amp, amp) from a seeded xorshift32. */
function fillHostRandom(buf: HostBuffer, n: number, dtype: 'f16' | 'f32', seed: number, amp: number): void {
  let x = (seed * 0x9e3779b1) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return (x / 2 ** 32) * 2 - 1;
  };
  const b = buf.bytes;
  if (dtype === 'f32') {
    const v = new Float32Array(b.buffer, b.byteOffset, n);
    for (let i = 0; i < n; i++) v[i] = next() * amp;
  } else {
    const v = new Uint16Array(b.buffer, b.byteOffset, n);
    for (let i = 0; i < n; i++) v[i] = f32ToF16Bits(next() * amp);
  }
}
