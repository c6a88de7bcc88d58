import { describe, expect, it } from 'vitest';
import { addInPlace } from '../../src/kernels/add.js';
import { copyBytes } from '../../src/kernels/copy.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { toF16, fromF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn } from '../helpers/random.js';
import { expectClose } from '../helpers/close.js';

describe('add (residual, in place)', async () => {
  for (const dtype of await activationDtypes()) {
    // 1000 and 70001: not multiples of the 256-wide workgroup.
    it.each([1, 1000, 70001])(`%i elements, ${dtype}`, async (n) => {
      const gpu = await getGpu();
      const a = randn(n, 1);
      const b = randn(n, 2);
      const x = Tensor.from(gpu, dtype === 'f16' ? toF16(a) : a, [n], dtype, 'x');
      const y = Tensor.from(gpu, dtype === 'f16' ? toF16(b) : b, [n], dtype, 'y');
      record(gpu, 'add', (ctx) => addInPlace(ctx, x, y));
      const raw = await x.read();
      const got = dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
      const ref = Float32Array.from(a, (v, i) => v + b[i]!);
      // f32: one rounding of the sum, the same as Float32Array's; f16: inputs and sum rounded to half.
      expectClose(got, ref, dtype === 'f16' ? { atol: 4e-3, rtol: 2e-3 } : { atol: 0, rtol: 0 });
      x.destroy();
      y.destroy();
    });
  }
});

describe('copy', () => {
  it('copies an odd number of 16-byte vectors exactly', async () => {
    const gpu = await getGpu();
    const n = 4 * 12345;
    const src = Tensor.from(gpu, Uint32Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 0), [n], 'u32', 'src');
    const dst = Tensor.empty(gpu, [n], 'u32', 'dst');
    record(gpu, 'copy', (ctx) => copyBytes(ctx, src.buffer, dst.buffer, n * 4));
    expect(Array.from(await dst.read())).toEqual(Array.from(await src.read()));
  });
});
