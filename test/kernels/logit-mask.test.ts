import { describe, expect, it } from 'vitest';
import { maskLogits } from '../../src/kernels/logit-mask.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { toF16, fromF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { randn, rng } from '../helpers/random.js';

/** CPU reference: disallowed logits become the dtype's lowest finite value, the rest unchanged. */
function maskRef(logits: Float32Array, allowed: Uint32Array, lowest: number): Float32Array {
  return logits.map((v, i) => (((allowed[i >> 5]! >>> (i & 31)) & 1) === 1 ? v : lowest));
}

describe('logit_mask (grammar-constrained decoding)', async () => {
  for (const dtype of await activationDtypes()) {
    // 1000 and 131072 + 7: not multiples of the workgroup or of 32 bits; 131072 is Tekken's V.
    it.each([1000, 131072, 131079])(`V = %i, ${dtype}`, async (V) => {
      const gpu = await getGpu();
      const u = rng(V);
      const allowed = new Uint32Array(Math.ceil(V / 32));
      // Sparse and dense words alike: a grammar admits a few tokens or most of them.
      for (let w = 0; w < allowed.length; w++) allowed[w] = w % 3 === 0 ? 0 : w % 3 === 1 ? (u() * 2 ** 32) >>> 0 : 0xffffffff;
      const x = randn(V, 3);
      const logits = Tensor.from(gpu, dtype === 'f16' ? toF16(x) : x, [V], dtype, 'logits');
      const mask = Tensor.from(gpu, allowed, [allowed.length], 'u32', 'allowed');
      record(gpu, 'logit_mask', (ctx) => maskLogits(ctx, logits, mask));
      const raw = await logits.read();
      const got = dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
      const input = dtype === 'f16' ? fromF16(toF16(x)) : x;
      // Exact: the kernel only copies or replaces values.
      expect(Array.from(got)).toEqual(Array.from(maskRef(input, allowed, dtype === 'f16' ? -65504 : -3.4028234663852886e38)));
      logits.destroy();
      mask.destroy();
    });
  }
});
