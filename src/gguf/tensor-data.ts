/**
 * A tensor's bytes from a GGUF, in the engine's row order: read by range from the source, rows of
 * q/k projections moved back from llama.cpp's interleaved-RoPE order (`hfRow`, whole rows of
 * blocks, bytes unchanged), and, for the CPU reference, dequantised to float64.
 */
import { IntegrityError } from '../errors.js';
import { dequantize, supportedType } from './dequant.js';
import { hfRow, type GgufTensorSource } from './mapping.js';
import type { GgufTensorInfo } from './reader.js';
import type { ByteSource } from './source.js';

/** The stored bytes of one tensor (exactly `info.byteLength`, else IntegrityError). */
export async function readTensorBytes(src: ByteSource, info: GgufTensorInfo, signal?: AbortSignal): Promise<Uint8Array> {
  const b = await src.read(info.offset, info.byteLength, signal);
  if (b.byteLength !== info.byteLength) {
    throw new IntegrityError(`${src.name}: truncated: tensor ${info.name} needs bytes ${info.offset}..${info.offset + info.byteLength}, got ${b.byteLength}`);
  }
  return b;
}

/** Rows in the engine's order: a copy with q/k rows un-interleaved, else the bytes as given. */
export function engineRowOrder(t: GgufTensorSource, bytes: Uint8Array): Uint8Array {
  if (!t.interleaved) return bytes;
  const rows = t.shape[0]!;
  const rowBytes = bytes.byteLength / rows;
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    out.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), hfRow(r, rows, t.interleaved.heads) * rowBytes);
  }
  return out;
}

/** The tensor as float64 values (bit-exact f32 dequantisation) in the engine's layout. */
export function dequantizeTensor(t: GgufTensorSource, bytes: Uint8Array): Float64Array {
  const type = supportedType(t.info.type, `${t.info.name}`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  return dequantize(type, engineRowOrder(t, bytes), n);
}
