/**
 * `WeightMap` over the uploaded weights (`src/weights/upload.ts`): views each stored tensor as
 * what the model code asks for (a dense tensor, a linear weight's row parts, an embedding table)
 * without copying. A tied lm_head and the embedding table are two views of the same buffers.
 */
import { FormatError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { Tensor } from '../gpu/tensor.js';
import type { EmbeddingTable } from '../kernels/embedding.js';
import type { GpuTensor, GpuWeights } from '../weights/upload.js';
import type { LinearWeight } from './linear.js';
import type { WeightMap } from './weights.js';

export class UploadedWeights implements WeightMap {
  constructor(
    private readonly gpu: Gpu,
    readonly weights: GpuWeights,
  ) {}

  has(name: string): boolean {
    return this.weights.has(name);
  }

  shape(name: string): readonly number[] {
    return this.weights.get(name).shape;
  }

  tensor(name: string): Tensor {
    const t = this.weights.get(name);
    if (t.dtype === 'q4' || t.parts.length !== 1) {
      throw new FormatError(`${name}: expected a dense tensor in one buffer, got ${t.dtype} in ${t.parts.length} parts`);
    }
    return new Tensor(this.gpu, t.parts[0]!.data, t.shape, t.dtype, name);
  }

  matrix(name: string): LinearWeight {
    const t = this.weights.get(name);
    const [rows, ...rest] = t.shape;
    const cols = rest.reduce((a, b) => a * b, 1);
    if (rows === undefined || !rest.length) throw new FormatError(`${name}: [${t.shape}] is not a matrix`);
    if (t.dtype === 'q4') {
      return {
        kind: 'q4',
        w: { rows, cols, label: name, parts: t.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, qweight: p.data, scales: scalesOf(t, p) })) },
      };
    }
    return {
      kind: 'dense',
      w: { shape: [rows, cols], dtype: t.dtype, label: name, parts: t.parts.map((p) => ({ buffer: p.data, rowStart: p.rowStart, rows: p.rows })) },
    };
  }

  table(name: string): EmbeddingTable {
    const t = this.weights.get(name);
    const [rows, cols] = t.shape;
    if (rows === undefined || cols === undefined || t.shape.length !== 2) throw new FormatError(`${name}: [${t.shape}] is not a table`);
    return {
      dtype: t.dtype,
      rows,
      cols,
      parts: t.parts.map((p) => ({ rowStart: p.rowStart, rows: p.rows, data: p.data, scales: t.dtype === 'q4' ? scalesOf(t, p) : undefined })),
    };
  }
}

function scalesOf(t: GpuTensor, p: GpuTensor['parts'][number]): GPUBuffer {
  if (!p.scales) throw new FormatError(`${t.name}: q4 part at row ${p.rowStart} has no scales`);
  return p.scales;
}
