/**
 * The on-device check that admits the subgroup-matrix prefill kernels
 * (shaders/subgroup_matrix_matmul.wgsl): compile its q4 variant for the adapter's shape, run one small
 * product with partial tiles on both sides and two quantisation groups, compare with a float64
 * CPU product, and record the verdict for the device (`markSubgroupMatrix`). `q4MatMul` uses the
 * kernel by default only after a pass, so a browser whose Dawn spells the experimental WGSL
 * differently, or a driver that computes it wrong, keeps the tiled kernels and says why
 * (`subgroupMatrixVerdict`). Run once per device during load (`compileModelPipelines`); a few
 * milliseconds on a GPU. The GGUF and dense variants (the same shader and fragment code, with the
 * block decoding of GGUF's tiled kernel) follow this verdict; if one of them fails to compile at
 * load, `compileModelPipelines` takes the tiled kernels back instead of failing.
 */
import type { Gpu } from '../gpu/device.js';
import { record } from '../gpu/kernel.js';
import { Tensor } from '../gpu/tensor.js';
import { q4MatMulRef, quantizeQ4 } from '../quant/q4.js';
import { fromF16, roundF16, toF16 } from '../util/f16.js';
import { destroyQ4, q4MatMul, q4MatMulSubgroupMatrixKernel, uploadQ4, type Q4Weight } from './q4.js';
import { describeShape, markSubgroupMatrix, subgroupMatrixShape, subgroupMatrixVerdict, type SubgroupMatrixShape, type SubgroupMatrixVerdict } from './subgroup-matrix.js';

/** M, N past a 64 tile (and N not a multiple of 16), K two groups. */
const [M, N, K] = [67, 72, 64];

/**
 * Allowed |got - ref|: 2^-10 (|ref| + sum_k |w_k x_k|). The kernel rounds each dequantised weight
 * to f16 (2^-11 relative; X is exact in f16 here) and an f16 result is stored rounded (2^-11 of
 * |ref|); f32 sums add far less at K=64.
 * A wrong fragment, row or column errs by about sum |w x| / sqrt(K), 32 times the bound.
 */
const TOL = 2 ** -10;

/**
 * Checks the kernel on `gpu` once (later calls return the first verdict) and records the verdict.
 * A kernel that passes becomes `q4MatMul`'s default, except on CPU adapters (`gpu.isSoftware`):
 * lavapipe, the one with the feature, emulates the matrices and ran the q4 prefill product 3.2x
 * slower than `tile64` (bench section q4matmul, 128 x 5120 -> 4096); `onCpu` makes it the
 * default there too (the tests, which check the model's path on lavapipe).
 */
export async function checkQ4MatMulSubgroupMatrix(gpu: Gpu, opts: { onCpu?: boolean } = {}): Promise<SubgroupMatrixVerdict> {
  const known = subgroupMatrixVerdict(gpu);
  if (known) return known;
  const shape = subgroupMatrixShape(gpu);
  let verdict: SubgroupMatrixVerdict;
  if (!shape) {
    verdict = {
      shape: null,
      isDefault: false,
      reason: !gpu.features.subgroupMatrix
        ? 'the device has no chromium-experimental-subgroup-matrix'
        : !gpu.features.f16
          ? 'the device has no shader-f16'
          : 'the adapter lists no f16 x f16 -> f32 subgroup matrix of 8 or 16',
    };
  } else {
    const failure = await checkSubgroupMatrixShape(gpu, shape);
    if (failure) verdict = { shape: null, isDefault: false, reason: failure };
    else if (gpu.isSoftware && !opts.onCpu) verdict = { shape, isDefault: false, reason: 'passed its check; not the default on a CPU adapter (emulated matrices)' };
    else verdict = { shape, isDefault: true };
  }
  markSubgroupMatrix(gpu, verdict);
  return verdict;
}

/**
 * Runs the check for one shape without recording a verdict: null when the kernel compiles and
 * matches the reference, else why not (the compiler's or runtime's error, or the first mismatch).
 */
export async function checkSubgroupMatrixShape(gpu: Gpu, shape: SubgroupMatrixShape): Promise<string | null> {
  try {
    return await runCheck(gpu, shape);
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

/** Both activation dtypes (the model's prefill is f32, the kernel tests run f16 too). */
async function runCheck(gpu: Gpu, shape: SubgroupMatrixShape): Promise<string | null> {
  for (const dtype of ['f32', 'f16'] as const) {
    await gpu.pipelines.compile(q4MatMulSubgroupMatrixKernel, { dtype, ...shape });
  }
  // Deterministic values in (-1, 1); X is exact in f16, so both dtypes have one reference.
  const wave = (n: number, a: number) => Array.from({ length: n }, (_, i) => Math.sin(i * a + 0.5));
  const q = quantizeQ4(wave(N * K, 0.7311), N, K);
  const X = wave(M * K, 1.3177).map(roundF16);
  const ref = q4MatMulRef(q, X, M);
  const w = uploadQ4(gpu, q, 'subgroup-matrix-check.w');
  try {
    for (const dtype of ['f32', 'f16'] as const) {
      const failure = await compare(gpu, shape, w, ref, X, dtype);
      if (failure) return failure;
    }
    return null;
  } finally {
    destroyQ4(w);
  }
}

async function compare(
  gpu: Gpu,
  shape: SubgroupMatrixShape,
  w: Q4Weight,
  ref: { y: Float64Array; mag: Float64Array },
  X: number[],
  dtype: 'f32' | 'f16',
): Promise<string | null> {
  const x = Tensor.from(gpu, dtype === 'f16' ? toF16(X) : Float32Array.from(X), [M, K], dtype, 'subgroup-matrix-check.x');
  const y = Tensor.empty(gpu, [M, N], dtype, 'subgroup-matrix-check.y');
  try {
    record(gpu, 'subgroup-matrix-check', (ctx) => q4MatMul(ctx, w, x, y, M, { variant: 'subgroupMatrix', shape }));
    const raw = await y.read();
    const got = dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
    for (let i = 0; i < M * N; i++) {
      const [g, r] = [got[i]!, ref.y[i]!];
      if (!(Math.abs(g - r) <= TOL * (Math.abs(r) + ref.mag[i]!))) {
        const at = `Y[${Math.floor(i / N)}, ${i % N}]`;
        return `${describeShape(shape)}, ${dtype}: ${at} = ${g}, float64 reference ${r.toFixed(5)}`;
      }
    }
    return null;
  } finally {
    x.destroy();
    y.destroy();
  }
}
