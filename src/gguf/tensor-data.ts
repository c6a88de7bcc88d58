/**
 * A tensor's bytes from a GGUF, in the engine's row order: read by range from the source (for
 * the upload, neighbouring tensors together: `tensorsInSpans`), rows of q/k projections moved
 * back from llama.cpp's interleaved-RoPE order (`hfRow`, whole rows of blocks, bytes unchanged),
 * and, for the CPU reference, dequantised to float64.
 */
import { IntegrityError } from '../errors.js';
import { dequantize, supportedType } from './dequant.js';
import { hfRow, type GgufTensorSource } from './mapping.js';
import type { GgufTensorInfo } from './reader.js';
import type { ByteSource } from './source.js';

/** Bytes read at once by `tensorsInSpans`: Pixtral-12B's 7.5 GB text file is ~230 reads, not 363. */
export const DEFAULT_SPAN_BYTES = 32 << 20;

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

/**
 * The tensors' stored bytes in file order, neighbours read together: one `read` covers as many
 * consecutive tensors of a file as fit in `spanBytes` (a larger tensor is one read alone), so a
 * URL source makes a few large Range requests instead of one per tensor, and a cached source
 * reads each chunk once. Yields each tensor with exactly its bytes (IntegrityError if short).
 */
export async function* tensorsInSpans<T extends { file: F; info: GgufTensorInfo }, F extends string>(
  sources: Record<F, ByteSource>, tensors: readonly T[], opts: { spanBytes?: number; signal?: AbortSignal } = {},
): AsyncGenerator<{ t: T; bytes: Uint8Array }> {
  const limit = opts.spanBytes ?? DEFAULT_SPAN_BYTES;
  const order = [...tensors].sort((a, b) => (a.file === b.file ? a.info.offset - b.info.offset : a.file < b.file ? -1 : 1));
  for (let i = 0; i < order.length; ) {
    const first = order[i]!;
    let j = i + 1;
    let end = first.info.offset + first.info.byteLength;
    while (j < order.length && order[j]!.file === first.file && order[j]!.info.offset + order[j]!.info.byteLength - first.info.offset <= limit) {
      end = Math.max(end, order[j]!.info.offset + order[j]!.info.byteLength);
      j++;
    }
    const src = sources[first.file];
    const span = await src.read(first.info.offset, end - first.info.offset, opts.signal);
    for (const t of order.slice(i, j)) {
      const at = t.info.offset - first.info.offset;
      if (span.byteLength < at + t.info.byteLength) {
        throw new IntegrityError(`${src.name}: truncated: tensor ${t.info.name} needs bytes ${t.info.offset}..${t.info.offset + t.info.byteLength}, got ${Math.max(0, span.byteLength - at)}`);
      }
      yield { t, bytes: span.subarray(at, at + t.info.byteLength) };
    }
    i = j;
  }
}
