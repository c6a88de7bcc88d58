/**
 * Minimal safetensors writer, for tests (small checkpoints built on the fly) and for the
 * converter benchmark (a multi-GB checkpoint streamed to disk). The header is written first
 * with every offset known from the shapes, then the data in header order, so nothing needs to be
 * held in memory.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { itemSize, numel } from './safetensors.js';

export interface TensorSpec {
  name: string;
  /** Any safetensors dtype string (BF16, F16, F32, I64, ...). */
  dtype: string;
  shape: number[];
}

export interface TensorData extends TensorSpec {
  data: ArrayBufferView;
}

function specBytes(s: TensorSpec): number {
  const size = itemSize(s.dtype);
  if (size === undefined) throw new Error(`safetensors writer: unknown dtype ${s.dtype}`);
  return numel(s.shape) * size;
}

/** The 8-byte length + JSON header (space-padded to a multiple of 8) for tensors laid out in order. */
export function safetensorsHeader(specs: TensorSpec[], metadata: Record<string, string> = { format: 'pt' }): Buffer {
  const obj: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const s of specs) {
    const n = specBytes(s);
    obj[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(obj);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(body.length), 0);
  return Buffer.concat([head, body]);
}

/** Writes tensors to a file; streams its data in order after the header. */
export class SafetensorsStreamWriter {
  private index = 0;
  private written = 0;

  private constructor(
    private readonly fh: FileHandle,
    private readonly specs: TensorSpec[],
  ) {}

  static async create(path: string, specs: TensorSpec[]): Promise<SafetensorsStreamWriter> {
    const fh = await open(path, 'w');
    await fh.write(safetensorsHeader(specs));
    return new SafetensorsStreamWriter(fh, specs);
  }

  /** Appends bytes of the current tensor (and moves on to the next once it is complete). */
  async write(bytes: ArrayBufferView): Promise<void> {
    while (this.specs[this.index] && specBytes(this.specs[this.index]!) === 0) this.index++;
    const spec = this.specs[this.index];
    if (!spec) throw new Error('safetensors writer: all tensors already written');
    const need = specBytes(spec);
    if (this.written + bytes.byteLength > need) throw new Error(`safetensors writer: too many bytes for ${spec.name}`);
    await this.fh.write(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.written += bytes.byteLength;
    if (this.written === need) {
      this.index++;
      this.written = 0;
    }
  }

  async close(): Promise<void> {
    // Zero-size tensors complete without a write.
    while (this.index < this.specs.length && specBytes(this.specs[this.index]!) === 0) this.index++;
    await this.fh.close();
    if (this.index !== this.specs.length) throw new Error(`safetensors writer: closed before ${this.specs[this.index]!.name} was written`);
  }
}

/** Writes a small safetensors file in one go. */
export async function writeSafetensors(path: string, tensors: TensorData[]): Promise<void> {
  const w = await SafetensorsStreamWriter.create(path, tensors);
  for (const t of tensors) if (t.data.byteLength) await w.write(t.data);
  await w.close();
}
