/**
 * CPU reference of the embedding gather: out[t, :] = table[ids[t], :] in float64, with the GPU's
 * out-of-range rule (an id >= vocab gives a zero row). q4 rows are dequantised with `q4At`, the
 * definition the GPU kernels share.
 */
import { q4At, type Q4Matrix } from '../../../src/quant/q4.js';
import { f16BitsToF32 } from '../../../src/util/f16.js';

export type RefTable =
  | { dtype: 'f32'; rows: number; cols: number; data: Float32Array } // [rows, cols]
  | { dtype: 'f16'; rows: number; cols: number; data: Uint16Array } // [rows, cols] half bits
  | { dtype: 'q4'; q: Q4Matrix };

export function tableAt(t: RefTable, r: number, c: number): number {
  if (t.dtype === 'q4') return q4At(t.q, r, c);
  const v = t.data[r * t.cols + c]!;
  return t.dtype === 'f16' ? f16BitsToF32(v) : v;
}

/** [ids.length, cols] float64. */
export function embeddingRef(t: RefTable, ids: ArrayLike<number>): Float64Array {
  const rows = t.dtype === 'q4' ? t.q.rows : t.rows;
  const cols = t.dtype === 'q4' ? t.q.cols : t.cols;
  const out = new Float64Array(ids.length * cols);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id >= rows) continue;
    for (let c = 0; c < cols; c++) out[i * cols + c] = tableAt(t, id, c);
  }
  return out;
}
