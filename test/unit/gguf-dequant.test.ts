/**
 * CPU dequantisation of ggml blocks beyond what the float64-golden forward (gguf-model.test.ts)
 * covers: a hand-made Q4_1 block (no fixture holds Q4_1), and every Q5_0 / Q4_0 / Q8_0 block of
 * the `screens` files against the same model's F16 file. Bound for the latter: ggml rounds each
 * value to a multiple of the block's d (<= |d| / 2 off, up to |d| for the one clamped end of the
 * Q4_0/Q5_0 range: q = min(15, x / d + 8.5)), with d then stored as f16 (|q| <= 16 times 2^-11 d
 * more), and the F16 file is the source rounded to f16 (<= 2^-11 relative). A wrong high bit
 * (Q5_0) is 16 d off, a wrong nibble or byte several d.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/gguf/dequant.js';
import { ggufModel, hfRow } from '../../src/gguf/mapping.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { dequantizeTensor, readTensorBytes } from '../../src/gguf/tensor-data.js';
import { f16BitsToF32, f32ToF16Bits } from '../../src/util/f16.js';
import { sharedDir } from '../fixture-server.js';

const screens = resolve(sharedDir, 'fixtures/gguf/screens');

describe('dequantisation', () => {
  it('Q4_1: x = q d + m with f32 rounding', () => {
    const b = new Uint8Array(20);
    const v = new DataView(b.buffer);
    v.setUint16(0, f32ToF16Bits(0.1), true);
    v.setUint16(2, f32ToF16Bits(-1.3), true);
    for (let j = 0; j < 16; j++) b[4 + j] = j | ((15 - j) << 4);
    const d = f16BitsToF32(f32ToF16Bits(0.1));
    const m = f16BitsToF32(f32ToF16Bits(-1.3));
    const x = dequantize('Q4_1', b, 32);
    for (let j = 0; j < 16; j++) {
      expect(x[j]).toBe(Math.fround(Math.fround(j * d) + m));
      expect(x[j + 16]).toBe(Math.fround(Math.fround((15 - j) * d) + m));
    }
  });

  it('Q6_K: signed 6-bit values times f32(d * scale), one scale per 16', () => {
    const b = new Uint8Array(210);
    const v = new DataView(b.buffer);
    v.setUint16(208, f32ToF16Bits(0.01), true);
    for (let i = 0; i < 16; i++) v.setInt8(192 + i, i - 8);
    for (let i = 0; i < 128; i++) b[i] = (i * 37) & 0xff;
    for (let i = 0; i < 64; i++) b[128 + i] = (i * 91) & 0xff;
    const x = dequantize('Q6_K', b, 256);
    const d = f16BitsToF32(f32ToF16Bits(0.01));
    // ggml's loop, written out independently: n halves of 128, l < 32, four quarters.
    for (let n = 0; n < 2; n++) {
      for (let l = 0; l < 32; l++) {
        const ql = (k: number) => b[64 * n + l + k]!;
        const qh = b[128 + 32 * n + l]!;
        const q = [
          ((ql(0) & 0xf) | (((qh >> 0) & 3) << 4)) - 32, ((ql(32) & 0xf) | (((qh >> 2) & 3) << 4)) - 32,
          ((ql(0) >> 4) | (((qh >> 4) & 3) << 4)) - 32, ((ql(32) >> 4) | (((qh >> 6) & 3) << 4)) - 32,
        ];
        for (let k = 0; k < 4; k++) {
          const sc = v.getInt8(192 + 8 * n + (l >> 4) + 2 * k);
          expect(x[128 * n + 32 * k + l]).toBe(Math.fround(Math.fround(d * sc) * q[k]!));
        }
      }
    }
  });

  for (const [file, types] of [['q4_k_m', ['Q5_0', 'Q8_0']], ['q4_0', ['Q4_0', 'Q8_0']], ['q8_0', ['Q8_0']]] as const) {
    it(`screens ${file}: every ${types.join('/')} value within d of the F16 file`, async () => {
      const mm = await readGgufHeader(fileSource(resolve(screens, 'pixtral-tiny-screens-mmproj-f16.gguf')));
      const load = async (name: string) => {
        const src = fileSource(resolve(screens, `pixtral-tiny-screens-text-${name}.gguf`));
        const m = ggufModel(await readGgufHeader(src), mm);
        return { src, tensors: m.tensors.filter((t) => t.file === 'text') };
      };
      const q = await load(file);
      const ref = await load('f16');
      const seen = new Set<string>();
      for (const t of q.tensors) {
        const r = ref.tensors.find((x) => x.name === t.name)!;
        const qb = await readTensorBytes(q.src, t.info);
        const got = dequantizeTensor(t, qb);
        const want = dequantizeTensor(r, await readTensorBytes(ref.src, r.info));
        seen.add(t.info.typeName);
        if (t.info.typeName === 'F32') {
          expect(got).toEqual(want);
          continue;
        }
        // d of every block, in the engine's row order (rows move whole, so block b of row r).
        const ds = blockScales(t.info.typeName, qb, t);
        for (let i = 0; i < got.length; i++) {
          const tol = Math.abs(ds[Math.floor(i / 32)]!) * (1 + 16 * 2 ** -11) + 2 ** -10 * Math.abs(want[i]!);
          if (!(Math.abs(got[i]! - want[i]!) <= tol)) expect.fail(`${t.name}[${i}] ${got[i]} vs f16 ${want[i]} (tol ${tol})`);
        }
      }
      for (const ty of types) expect(seen.has(ty)).toBe(true);
    });
  }
});

/** Each 32-element block's d (the f16 at its start), in engine row order (rows move whole). */
function blockScales(type: string, bytes: Uint8Array, t: { shape: number[]; interleaved?: { heads: number } }): Float64Array {
  const bb = ({ Q4_0: 18, Q5_0: 22, Q8_0: 34 } as Record<string, number>)[type];
  if (!bb) throw new Error(`no block size for ${type}`);
  const n = bytes.byteLength / bb;
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  const [rows, cols] = t.shape as [number, number];
  const per = cols / 32;
  const out = new Float64Array(n);
  for (let b = 0; b < n; b++) {
    const r = Math.floor(b / per);
    const row = t.interleaved ? hfRow(r, rows, t.interleaved.heads) : r;
    out[row * per + (b % per)] = f16BitsToF32(v.getUint16(b * bb, true));
  }
  return out;
}
