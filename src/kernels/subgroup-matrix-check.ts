/**
 * The on-device check that admits the subgroup-matrix kernels: the prefill products
 * (shaders/subgroup_matrix_matmul.wgsl) and prefill attention
 * (shaders/attention_prefill_subgroup_matrix.wgsl). It compiles the q4 product and the attention
 * for the adapter's shape, runs one small case of each with partial tiles (the product: both
 * sides, two quantisation groups; the attention: causal key ranges over two key tiles, GQA),
 * compares them with float64 CPU references, and records one verdict for the device
 * (`markSubgroupMatrix`). The kernels are the default only after a pass, so a browser whose Dawn
 * spells the experimental WGSL differently, or a driver that computes it wrong, keeps the tiled
 * and SIMT kernels and says why (`subgroupMatrixVerdict`). Run once per device during load
 * (`compileModelPipelines`); a few milliseconds on a GPU. The GGUF and dense products (the same
 * shader and fragment code, with the block decoding of GGUF's tiled kernel) and the attention's
 * cache forms follow this verdict; if one of them fails to compile at load,
 * `compileModelPipelines` takes the tiled kernels back instead of failing.
 */
import type { Gpu } from '../gpu/device.js';
import { record } from '../gpu/kernel.js';
import { Tensor } from '../gpu/tensor.js';
import { q4MatMulRef, quantizeQ4 } from '../quant/q4.js';
import { fromF16, roundF16, toF16 } from '../util/f16.js';
import { attentionPrefillSubgroupMatrixKernel, blockDiagonalAttention, subgroupMatrixKeyFragments } from './attention.js';
import { attentionRef } from './attention-ref.js';
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
export async function checkSubgroupMatrix(gpu: Gpu, opts: { onCpu?: boolean } = {}): Promise<SubgroupMatrixVerdict> {
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
  const ck = subgroupMatrixKeyFragments(gpu, shape.frag, ATT.d);
  for (const dtype of ['f32', 'f16'] as const) {
    await gpu.pipelines.compile(q4MatMulSubgroupMatrixKernel, { dtype, ...shape });
    await gpu.pipelines.compile(attentionPrefillSubgroupMatrixKernel, { dtype, kvF16: false, segments: true, d4: ATT.d / 4, ck, ...shape });
  }
  return (await checkProduct(gpu, shape)) ?? (await checkAttention(gpu, shape));
}

/** Deterministic check inputs in (-1, 1). */
function wave(n: number, a: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * a + 0.5));
}

async function checkProduct(gpu: Gpu, shape: SubgroupMatrixShape): Promise<string | null> {
  // X is exact in f16, so both dtypes have one reference.
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

/**
 * Attention: T query rows (past two fragments of rows, and past one key tile at the widest) with
 * causal key ranges, 2 query heads over 1 kv head, head_dim 32; q, k, v in (-1, 1).
 */
const ATT = { T: 71, heads: 2, d: 32 };
/**
 * Allowed |got - ref| for the attention, absolute: q, k, v and the weights rounded to f16 move
 * a score by at most 2^-10 sum |q k| scale <= 2^-10 sqrt(32) and each weight by e^{2E} - 1 with E
 * that plus 2^-11, ~0.013 at worst of |v| <= 1 (an f16 output adds 2^-11). A misplaced fragment,
 * a wrong mask or a missed rescale errs by tenths.
 */
const ATT_TOL = 2 ** -6;

async function checkAttention(gpu: Gpu, shape: SubgroupMatrixShape): Promise<string | null> {
  const { T, heads, d } = ATT;
  const [q, k, v] = [wave(T * heads * d, 0.917), wave(T * d, 1.771), wave(T * d, 0.5347)].map((x) => Float32Array.from(x, roundF16));
  const segments = new Uint32Array(2 * T).map((_, i) => (i % 2 ? (i - 1) / 2 + 1 : 0)); // row t: keys [0, t]
  const want = attentionRef(q!, k!, v!, T, { heads, kvHeads: 1, d, scale: 1 / Math.sqrt(d), range: (t) => [0, t + 1] });
  for (const dtype of ['f32', 'f16'] as const) {
    const up = (x: Float32Array, h: number, label: string) => Tensor.from(gpu, dtype === 'f16' ? toF16(x) : x, [T, h, d], dtype, label);
    const t = [up(q!, heads, 'subgroup-matrix-check.q'), up(k!, 1, 'subgroup-matrix-check.k'), up(v!, 1, 'subgroup-matrix-check.v')] as const;
    const seg = Tensor.from(gpu, segments, [T, 2], 'u32', 'subgroup-matrix-check.seg');
    const out = Tensor.empty(gpu, [T, heads, d], dtype, 'subgroup-matrix-check.out');
    try {
      record(gpu, 'subgroup-matrix-check', (ctx) =>
        blockDiagonalAttention(ctx, out, t[0], t[1], t[2], seg, { tokens: T, heads, kvHeads: 1, headDim: d, keyRows: T, variant: 'subgroupMatrix', shape }),
      );
      const raw = await out.read();
      const got = dtype === 'f16' ? fromF16(raw as Uint16Array) : (raw as Float32Array);
      for (let i = 0; i < want.length; i++) {
        if (!(Math.abs(got[i]! - want[i]!) <= ATT_TOL)) {
          const at = `out[${Math.floor(i / (heads * d))}, ${Math.floor(i / d) % heads}, ${i % d}]`;
          return `${describeShape(shape)}, attention ${dtype}: ${at} = ${got[i]}, float64 reference ${want[i]!.toFixed(5)}`;
        }
      }
    } finally {
      for (const x of [...t, seg, out]) x.destroy();
    }
  }
  return null;
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
