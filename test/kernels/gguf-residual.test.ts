/**
 * The GGUF matvec's RESIDUAL epilogue (`ggufMatVec(..., { residual: true })`, what the decoder's
 * o- and down-projections use for block weights): y += act(W x) in one dispatch must equal the
 * unfused pair, the matvec into a scratch row then `addInPlace`, bit for bit (the same two
 * roundings), for each of the kernel's block paths, every work split, f32 and (where the adapter has
 * shader-f16) f16 activations, a forced row split written at an output offset; and agree with
 * float64 y0 + W x within the matvec's bound (|err| <= 4 u sqrt(K) mag, as in gguf.test.ts,
 * plus one rounding of the add: u |y|, or 2^-11 |y| twice for f16 stores).
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import type { Gpu } from '../../src/gpu/device.js';
import { blockShape, GGML_TYPE, type SupportedType } from '../../src/gguf/types.js';
import { destroyGgufWeight, ggufMatVec, ggufRowBytes, uploadGgufWeight, type GgufMatVecConfig } from '../../src/kernels/gguf.js';
import { addInPlace } from '../../src/kernels/add.js';
import { canUseSubgroups } from '../../src/kernels/q4.js';
import { roundF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { readF32, upload } from '../helpers/act.js';
import { randn } from '../helpers/random.js';
import { U32, ggufMatVecRef, synthGguf } from './ref/gguf.js';

const unitK = (t: SupportedType) => Math.max(32, blockShape(GGML_TYPE[t])!.elems);

function configs(gpu: Gpu): (GgufMatVecConfig & { name: string })[] {
  const c: (GgufMatVecConfig & { name: string })[] = [
    { name: 'rows per thread', wg: 64, tpr: 1, intcvt: true },
    { name: 'shared tpr=4', wg: 64, tpr: 4, intcvt: true },
    { name: 'shared tpr=32', wg: 128, tpr: 32 },
  ];
  if (canUseSubgroups(gpu, 32)) c.push({ name: 'subgroups tpr=32', wg: 128, tpr: 32, subgroups: true });
  return c;
}

describe('gguf matvec with the residual add as its epilogue', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  // The epilogue is shared by every format; these three cover the three block paths of the
  // kernel (Q4_K's and Q6_K's own, the generic 32-element one), each compile costing seconds
  // on lavapipe.
  for (const type of ['Q4_K', 'Q6_K', 'Q8_0'] as const satisfies readonly SupportedType[]) {
    for (const dtype of dtypes) {
      it(`${type}, ${dtype}: bit-identical to matvec + add, and within the float64 bound`, async () => {
        for (const [N, K] of [[7, 3 * unitK(type)], [33, unitK(type)]] as const) {
          const bytes = synthGguf(type, N, K, 7 * N + K);
          const xv = randn(K, K + 3);
          const y0 = randn(N, N + 11).map((v) => 4 * v);
          if (dtype === 'f16') {
            xv.forEach((v, i) => (xv[i] = roundF16(v)));
            y0.forEach((v, i) => (y0[i] = roundF16(v)));
          }
          const { y: wx, mag } = ggufMatVecRef(type, bytes, N, K, xv);
          const w = uploadGgufWeight(gpu, type, N, K, bytes, `w${N}x${K}`);
          const x = upload(gpu, xv, dtype, 'x');
          for (const config of configs(gpu)) {
            const fused = upload(gpu, y0, dtype, 'fused');
            const plain = upload(gpu, y0, dtype, 'plain');
            const scratch = upload(gpu, new Float32Array(N), dtype, 'scratch');
            record(gpu, 'residual', (ctx) => {
              ggufMatVec(ctx, w, x, fused, { config, residual: true });
              ggufMatVec(ctx, w, x, scratch, { config });
              addInPlace(ctx, plain, scratch);
            });
            const got = await readF32(fused);
            expect(got, `${config.name} N=${N} K=${K}`).toEqual(await readF32(plain));
            for (let i = 0; i < N; i++) {
              const ref = y0[i]! + wx[i]!;
              const store = dtype === 'f16' ? 2 ** -11 * (Math.abs(wx[i]!) + Math.abs(ref)) : U32 * Math.abs(ref);
              const bound = 4 * U32 * Math.sqrt(K) * mag[i]! + store;
              if (!(Math.abs(got[i]! - ref) <= bound)) expect.fail(`${config.name} N=${N} K=${K} [${i}]: ${got[i]} vs ${ref} (bound ${bound})`);
            }
            for (const t of [fused, plain, scratch]) t.destroy();
          }
          x.destroy();
          destroyGgufWeight(w);
        }
      });
    }
  }

  it('Q6_K: a forced row split adds each part at its offset, leaving the rows around it alone', async () => {
    const type = 'Q6_K';
    const N = 45;
    const K = 3 * unitK(type);
    const bytes = synthGguf(type, N, K, 5);
    const w = uploadGgufWeight(gpu, type, N, K, bytes, 'split', 10 * ggufRowBytes(type, K) + 8);
    expect(w.parts.length).toBe(5);
    const xv = randn(K, 9);
    const x = upload(gpu, xv, 'f32', 'x');
    const y0 = randn(N, 3);
    const { y: wx, mag } = ggufMatVecRef(type, bytes, N, K, xv);
    const y = upload(gpu, y0, 'f32', 'y');
    record(gpu, 'residual split', (ctx) => ggufMatVec(ctx, w, x, y, { residual: true }));
    const got = await readF32(y);
    // A part written without the add (or at a wrong offset) is off by ~|y0| ~ 1, far over the bound.
    for (let i = 0; i < N; i++) {
      const ref = y0[i]! + wx[i]!;
      expect(Math.abs(got[i]! - ref)).toBeLessThanOrEqual(4 * U32 * Math.sqrt(K) * mag[i]! + U32 * Math.abs(ref));
    }
    for (const t of [x, y]) t.destroy();
    destroyGgufWeight(w);
  });
});
