/**
 * GGUF block kernels (src/kernels/gguf.ts) against float64 CPU references built on the bit-exact
 * ggml dequantisation (src/gguf/dequant.ts): the decode matvec in each work split, the prefill
 * matmul and the embedding gather, for every supported block format, at awkward sizes (rows not
 * multiples of 4 or of a workgroup, odd block counts so rows of Q8_0/Q4_0/Q5_0/Q6_K start off a
 * 4-byte boundary, and even ones for the Q6_K, Q8_0 and Q4_0 paths that need rows of whole words), forced row splits, llama.cpp's own blocks from the kq fixture, and one real
 * Nemo shape per format.
 *
 * Tolerances:
 * - Embedding gather: exact. Every format's values are formed as s * q - m in f32 with s * q
 *   exact (a small integer times an f16 or an f16 times a small integer), so the one rounding
 *   is ggml's own (gguf_blocks.wgsl); f16 output: the f32 value rounded to f16.
 * - matvec / matmul: |got - ref| <= C u sqrt(K) mag (+ 2^-11 |ref| for an f16 store), u = 2^-24,
 *   mag = sum_k (|w| + 2 |m|) |x| (ref/gguf.ts: bounds every partial sum of s (q . x) - m sum x),
 *   C = 4 as for q4 (roughly independent roundings grow like sqrt(K)); a wrong nibble or scale is
 *   hundreds of times over (asserted below).
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import { blockShape, GGML_TYPE, SUPPORTED_TYPES, type SupportedType } from '../../src/gguf/types.js';
import { ggufModel } from '../../src/gguf/mapping.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { blobSource } from '../../src/gguf/source.js';
import { dequantizeTensor, engineRowOrder, readTensorBytes } from '../../src/gguf/tensor-data.js';
import {
  defaultGgufMatVecConfig, destroyGgufWeight, ggufEmbed, ggufMatMul, ggufMatVec, ggufRowBytes, uploadGgufWeight, type GgufMatVecConfig, type GgufWeight,
} from '../../src/kernels/gguf.js';
import { roundF16 } from '../../src/util/f16.js';
import { canUseSubgroups } from '../../src/kernels/q4.js';
import { checkSubgroupMatrix } from '../../src/kernels/subgroup-matrix-check.js';
import { describeShape, fourSubgroups, type SubgroupMatrixShape } from '../../src/kernels/subgroup-matrix.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { readF32, upload } from '../helpers/act.js';
import { fixtureUrl } from '../helpers/fixture-url.js';
import { randn, rng } from '../helpers/random.js';
import { U32, dequantizeRows, ggufMatVecRef, synthGguf } from './ref/gguf.js';

const C = 4;
type Act = 'f32' | 'f16';

const elems = (t: SupportedType) => blockShape(GGML_TYPE[t])!.elems;
/** Smallest K with a whole number of blocks, a multiple of 32. */
const unitK = (t: SupportedType) => Math.max(32, elems(t));

function checkRows(got: ArrayLike<number>, ref: ArrayLike<number>, mag: ArrayLike<number>, K: number, dtype: Act, what: string,
  index: (i: number) => number = (i) => i): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[index(i)]!;
    const store = dtype === 'f16' ? 2 ** -11 * Math.abs(ref[i]!) : 0;
    const ratio = Math.max(0, Math.abs(g - ref[i]!) - store) / (U32 * Math.sqrt(K) * mag[i]!);
    if (!(ratio <= C)) expect.fail(`${what}: [${index(i)}] got ${g} want ${ref[i]} (${ratio.toFixed(2)} u sqrt(K) mag > ${C})`);
    worst = Math.max(worst, ratio);
  }
  return worst;
}

async function runMatVec(gpu: Gpu, w: GgufWeight, xv: Float32Array, dtype: Act, config?: GgufMatVecConfig, yOffset = 0, yLen = w.rows) {
  const x = upload(gpu, xv, dtype, 'x');
  const y = upload(gpu, new Float32Array(yLen).fill(12345), dtype, 'y');
  record(gpu, 'gguf_matvec', (ctx) => ggufMatVec(ctx, w, x, y, { yOffset, config }));
  const out = await readF32(y);
  x.destroy();
  y.destroy();
  return out;
}

/** Every work split and nibble conversion; the subgroup reduction where the adapter allows it. */
function matVecConfigs(gpu: Gpu): (GgufMatVecConfig & { name: string })[] {
  const configs: (GgufMatVecConfig & { name: string })[] = [
    { name: 'rows per thread, int conversion', wg: 64, tpr: 1, intcvt: true },
    { name: 'rows per thread, bit trick', wg: 64, tpr: 1 },
    { name: 'shared tpr=4', wg: 64, tpr: 4, intcvt: true },
    { name: 'shared tpr=32', wg: 128, tpr: 32 },
  ];
  if (canUseSubgroups(gpu, 32)) configs.push({ name: 'subgroups tpr=32', wg: 128, tpr: 32, subgroups: true });
  return configs;
}

describe('gguf matvec', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();
  const CONFIGS = matVecConfigs(gpu);

  for (const type of SUPPORTED_TYPES) {
    for (const dtype of dtypes) {
      // 2 blocks: rows of whole words, which Q6_K, Q8_0 and Q4_0 read by their own paths (1 and 3: not).
      const blocks = type === 'Q6_K' || type === 'Q8_0' || type === 'Q4_0' ? [1, 2, 3] : [1, 3];
      it(`${type}, ${dtype}: K in {${blocks}} blocks x N in {1, 7, 33}, every work split`, async () => {
        let worst = 0;
        for (const K of blocks.map((b) => b * unitK(type))) {
          for (const N of [1, 7, 33]) {
            const bytes = synthGguf(type, N, K, N * 1000 + K);
            const xv = randn(K, K + 7);
            if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
            const { y, mag } = ggufMatVecRef(type, bytes, N, K, xv);
            const w = uploadGgufWeight(gpu, type, N, K, bytes, `w${N}x${K}`);
            for (const config of CONFIGS) {
              const got = await runMatVec(gpu, w, xv, dtype, config);
              worst = Math.max(worst, checkRows(got, y, mag, K, dtype, `${config.name} N=${N} K=${K}`));
            }
            destroyGgufWeight(w);
          }
        }
        console.log(`gguf_matvec ${type} ${dtype}: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
      });
    }
  }

  for (const type of ['Q6_K', 'Q8_0'] as const) {
    it(`${type}: one dispatch per row part, written at the output offset (forced split, unaligned rows)`, async () => {
      const N = 45;
      const K = 3 * unitK(type);
      const rb = ggufRowBytes(type, K);
      expect(rb % 4).not.toBe(0);
      const bytes = synthGguf(type, N, K, 11);
      const w = uploadGgufWeight(gpu, type, N, K, bytes, 'split', 10 * rb + 8);
      expect(w.parts.map((p) => p.rows)).toEqual([10, 10, 10, 10, 5]);
      const xv = randn(K, 5);
      const { y, mag } = ggufMatVecRef(type, bytes, N, K, xv);
      for (const config of CONFIGS) {
        const got = await runMatVec(gpu, w, xv, 'f32', config, 3, N + 5);
        expect([got[0], got[1], got[2], got[N + 3], got[N + 4]]).toEqual([12345, 12345, 12345, 12345, 12345]);
        checkRows(got, y, mag, K, 'f32', `split ${config.name}`, (i) => i + 3);
      }
      destroyGgufWeight(w);
    });
  }

  it('the tolerance catches a swapped nibble order', () => {
    const N = 33;
    const K = 768;
    const bytes = synthGguf('Q4_K', N, K, 9);
    const xv = randn(K, 1);
    const { y, mag } = ggufMatVecRef('Q4_K', bytes, N, K, xv);
    const swapped = bytes.slice();
    for (let b = 0; b < swapped.length; b += 144) {
      for (let i = b + 16; i < b + 144; i++) swapped[i] = ((swapped[i]! & 0xf) << 4) | (swapped[i]! >> 4);
    }
    const wrong = ggufMatVecRef('Q4_K', swapped, N, K, xv).y;
    expect(() => checkRows(wrong, y, mag, K, 'f32', 'swapped')).toThrow();
  });
});

/**
 * The matmul cases of one block type: M in {1, 5, 70} x N in {7, 70}, K = 3 blocks, through
 * `variant`; `judge` gets each output row of M with its float64 reference and returns its worst
 * error in its own unit.
 */
async function matMulCases(
  gpu: Gpu,
  type: SupportedType,
  dtype: Act,
  variant: 'tiled' | 'subgroupMatrix',
  judge: (got: Float32Array, ref: Float64Array, mag: Float64Array, K: number, what: string) => number,
  shape?: SubgroupMatrixShape,
): Promise<number> {
  const K = 3 * unitK(type);
  let worst = 0;
  for (const N of [7, 70]) {
    const bytes = synthGguf(type, N, K, N + K);
    const w = uploadGgufWeight(gpu, type, N, K, bytes, `w${N}x${K}`);
    for (const M of [1, 5, 70]) {
      const xv = randn(M * K, M * 31 + N);
      if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
      const x = upload(gpu, xv, dtype, 'X');
      const y = upload(gpu, new Float32Array(M * N), dtype, 'Y');
      record(gpu, 'gguf_matmul', (ctx) => ggufMatMul(ctx, w, x, y, M, { variant, shape }));
      const got = await readF32(y);
      x.destroy();
      y.destroy();
      for (let m = 0; m < M; m++) {
        const { y: ref, mag } = ggufMatVecRef(type, bytes, N, K, xv.subarray(m * K, (m + 1) * K));
        worst = Math.max(worst, judge(got.subarray(m * N, (m + 1) * N), ref, mag, K, `M=${M} N=${N} row ${m}`));
      }
    }
    destroyGgufWeight(w);
  }
  return worst;
}

describe('gguf matmul', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  for (const type of SUPPORTED_TYPES) {
    for (const dtype of dtypes) {
      it(`${type}, ${dtype}: M in {1, 5, 70} x N in {7, 70}, K = 3 blocks`, async () => {
        const worst = await matMulCases(gpu, type, dtype, 'tiled', (got, ref, mag, K, what) => checkRows(got, ref, mag, K, dtype, what));
        console.log(`gguf_matmul ${type} ${dtype}: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
      });
    }
  }
});

/**
 * The same products on subgroup matrices (shaders/subgroup_matrix_matmul.wgsl with GGUF), wherever
 * the adapter has them (lavapipe from Mesa 26: `.ci/subgroup-matrix`; elsewhere skipped, saying
 * so). Tolerance as q4's subgroup-matrix cases (q4-matmul.test.ts): each dequantised weight and
 * each f32 activation rounded to f16 once (2^-11 of |w x| each, |w| |x| <= the mag term), an f16
 * store 2^-11 |ref|, plus the f32 sums' C u sqrt(K) mag.
 */
describe('gguf matmul on subgroup matrices', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();
  const verdict = await checkSubgroupMatrix(gpu, { onCpu: true });
  if (!verdict.shape) console.log(`gguf_matmul subgroupMatrix: not used on this adapter: ${verdict.reason}`);
  // The checked shape, and 4 subgroups per workgroup where the device has `subgroup_id`.
  const shapes = [verdict.shape, verdict.shape && fourSubgroups(gpu, verdict.shape)].filter((s): s is SubgroupMatrixShape => !!s);
  if (!shapes.length) it.skip(`every block format (skipped: ${verdict.reason})`, () => {});

  for (const type of SUPPORTED_TYPES) {
    for (const dtype of dtypes) for (const shape of shapes) {
      it(`${type}, ${dtype}, ${describeShape(shape)}: M in {1, 5, 70} x N in {7, 70}, K = 3 blocks, against float64`, async () => {
        const worst = await matMulCases(gpu, type, dtype, 'subgroupMatrix', (got, ref, mag, K, what) => {
          let w = 0;
          for (let n = 0; n < ref.length; n++) {
            const bound = 2 ** -11 * ((dtype === 'f16' ? Math.abs(ref[n]!) : 0) + (dtype === 'f16' ? 1 : 2) * mag[n]!);
            const err = Math.abs(got[n]! - ref[n]!);
            if (!(Math.max(0, err - bound) / (U32 * Math.sqrt(K) * mag[n]!) <= C)) expect.fail(`${what} [${n}]: got ${got[n]} want ${ref[n]} (mag ${mag[n]})`);
            w = Math.max(w, err / bound);
          }
          return w;
        }, shape);
        console.log(`gguf_matmul subgroupMatrix ${type} ${dtype} ${describeShape(shape)}: worst |err| / bound ${worst.toFixed(3)}`);
      });
    }
  }
});

describe('gguf embedding gather', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();

  for (const type of SUPPORTED_TYPES) {
    it(`${type}: rows bit-exact to the CPU dequantisation, out-of-range ids give zeros, split table`, async () => {
      const V = 37;
      const H = 3 * unitK(type);
      const bytes = synthGguf(type, V, H, 77);
      const ref = dequantizeRows(type, bytes, V, H);
      const table = uploadGgufWeight(gpu, type, V, H, bytes, 'table', 8 * ggufRowBytes(type, H) + 8);
      expect(table.parts.length).toBe(5);
      const idList = [0, 36, 5, 8, 9, 37, 1000, 17, 17];
      const ids = Tensor.from(gpu, Uint32Array.from(idList), [idList.length], 'u32', 'ids');
      for (const dtype of dtypes) {
        const out = Tensor.empty(gpu, [idList.length, H], dtype, 'out');
        record(gpu, 'embed', (ctx) => ggufEmbed(ctx, table, ids, out));
        const got = await readF32(out);
        idList.forEach((id, t) => {
          const want = id < V ? Array.from(ref.subarray(id * H, (id + 1) * H), (v) => (dtype === 'f16' ? roundF16(v) : v)) : new Array<number>(H).fill(0);
          expect(Array.from(got.subarray(t * H, (t + 1) * H)), `${dtype} token ${t} (id ${id})`).toEqual(want);
        });
        out.destroy();
      }
      ids.destroy();
      destroyGgufWeight(table);
    });
  }
});

describe('llama.cpp blocks (kq fixture)', async () => {
  const gpu = await getGpu();
  const file = async (name: string) => blobSource(await (await fetch(fixtureUrl(`/shared/fixtures/gguf/kq/${name}`))).blob(), name);

  for (const variant of ['q4_k_m', 'q5_k_m', 'q6_k', 'q8_0', 'q4_0', 'f16']) {
    it(`${variant}: every text tensor's matvec, and the embedding rows bit-exact`, async () => {
      const src = await file(`pixtral-kq-tiny-text-${variant}.gguf`);
      const model = ggufModel(await readGgufHeader(src), await readGgufHeader(await file('pixtral-kq-tiny-mmproj-f16.gguf')));
      for (const t of model.tensors.filter((t) => t.file === 'text' && t.shape.length === 2)) {
        const type = t.info.typeName as SupportedType;
        const [N, K] = t.shape as [number, number];
        const bytes = engineRowOrder(t, await readTensorBytes(src, t.info));
        const w = uploadGgufWeight(gpu, type, N, K, bytes, t.name);
        const xv = randn(K, N);
        const { y, mag } = ggufMatVecRef(type, bytes, N, K, xv);
        checkRows(await runMatVec(gpu, w, xv, 'f32'), y, mag, K, 'f32', `${variant} ${t.name} (${type})`);
        if (t.name.endsWith('embed_tokens.weight')) {
          const ref = dequantizeTensor(t, await readTensorBytes(src, t.info));
          const idList = [0, 1, 12, 1595, 2047];
          const ids = Tensor.from(gpu, Uint32Array.from(idList), [idList.length], 'u32', 'ids');
          const out = Tensor.empty(gpu, [idList.length, K], 'f32', 'out');
          record(gpu, 'embed', (ctx) => ggufEmbed(ctx, w, ids, out));
          const got = (await out.read()) as Float32Array;
          idList.forEach((id, i) => expect(Array.from(got.subarray(i * K, (i + 1) * K))).toEqual(Array.from(ref.subarray(id * K, (id + 1) * K))));
          ids.destroy();
          out.destroy();
        }
        destroyGgufWeight(w);
      }
    });
  }
});

describe('real shapes (K -> N), sampled rows', async () => {
  const gpu = await getGpu();
  // One real shape per format (SwiftShader is slow); the K-quants of Q4_K_M files at every
  // decoder shape. lm_head (5120 -> 131072) has its own case below.
  const cases: [SupportedType, number, number][] = [
    ...SUPPORTED_TYPES.map((t): [SupportedType, number, number] => [t, 5120, 1024]),
    ['Q4_K', 5120, 14336],
    ['Q4_K', 14336, 5120],
    ['Q6_K', 14336, 5120],
  ];
  for (const [type, K, N] of cases) {
    it(`${type} ${K} -> ${N}`, async () => {
      const bytes = synthGguf(type, N, K, K + N);
      const w = uploadGgufWeight(gpu, type, N, K, bytes, `${type}:${K}x${N}`);
      const xv = randn(K, N);
      const got = await runMatVec(gpu, w, xv, 'f32');
      const rows = [0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1];
      for (let i = 1; rows.length < 32; i++) rows.push(Math.floor((i * (N - 1)) / 27));
      const rb = ggufRowBytes(type, K);
      const refs = rows.map((r) => ggufMatVecRef(type, bytes.subarray(r * rb, (r + 1) * rb), 1, K, xv));
      const worst = checkRows(got, refs.map((r) => r.y[0]!), refs.map((r) => r.mag[0]!), K, 'f32', `${type} ${K}->${N}`, (i) => rows[i]!);
      console.log(`gguf_matvec ${type} ${K}->${N}: worst err ${worst.toFixed(3)} u sqrt(K) mag`);
      destroyGgufWeight(w);
    });
  }
});

describe('lm_head shape 5120 -> 131072 (Q6_K as Q4_K_M files store output.weight, and Q4_K)', async () => {
  const gpu = await getGpu();
  const K = 5120;
  const N = 131072;
  /** Rows synthesised per chunk: ~34 MB of Q6_K, so the CPU never holds a second full copy. */
  const CHUNK = 8192;

  // Runs on both adapters: with 128 MiB bindings (lavapipe) the ~550 MB tensor becomes row parts
  // exactly as the engine binds it (uploadGgufWeight, used by src/gguf/gpu-weights.ts), so the
  // part boundaries are checked there. Wall time: ~5 s of CPU synthesis per type plus ~1 s per
  // matvec on a quiet 2-core machine.
  for (const type of ['Q6_K', 'Q4_K'] as const) {
    it(`${type}: default and tpr=32 work splits, sampled rows`, async () => {
      const rb = ggufRowBytes(type, K);
      const bytes = new Uint8Array(N * rb);
      for (let r = 0; r < N; r += CHUNK) bytes.set(synthGguf(type, CHUNK, K, 1000 + r / CHUNK), r * rb);
      const w = uploadGgufWeight(gpu, type, N, K, bytes, `${type}:lm_head`);
      const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
      console.log(`${type} lm_head: ${(N * rb / 2 ** 20).toFixed(0)} MiB in ${w.parts.length} part(s), binding limit ${(limit / 2 ** 20).toFixed(0)} MiB`);
      // Contiguous parts covering every row, each one bindable; split only when the whole is not.
      w.parts.forEach((p, i) => {
        expect(p.rowStart).toBe(i === 0 ? 0 : w.parts[i - 1]!.rowStart + w.parts[i - 1]!.rows);
        expect(p.data.size).toBeLessThanOrEqual(limit);
      });
      expect(w.parts.at(-1)!.rowStart + w.parts.at(-1)!.rows).toBe(N);
      expect(w.parts.length > 1).toBe(N * rb + 8 > limit);

      // The sample catches row and offset bugs: the first and last 4 rows (the first and the
      // partial last group of 4), the rows either side of multiples of each config's workgroup
      // row count (4 wg / tpr: a wrong workgroup base shifts whole groups), either side of every
      // part boundary (a wrong part offset in the weight or in y), and seeded random rows.
      const configs = [defaultGgufMatVecConfig(gpu), { wg: 128, tpr: 32, intcvt: gpu.isSoftware }];
      const rows = new Set<number>([0, 1, 2, 3, N - 4, N - 3, N - 2, N - 1]);
      for (const c of configs) {
        const rpw = (4 * c.wg) / c.tpr;
        for (const j of [1, 2, 3, Math.floor(N / rpw / 2), N / rpw - 1]) rows.add(j * rpw - 1).add(j * rpw);
      }
      for (const p of w.parts.slice(1)) rows.add(p.rowStart - 1).add(p.rowStart);
      const u = rng(4242);
      for (let i = 0; i < 16; i++) rows.add(Math.floor(u() * N));
      const sample = [...rows].sort((a, b) => a - b);

      const xv = randn(K, 131);
      const refs = sample.map((r) => ggufMatVecRef(type, bytes.subarray(r * rb, (r + 1) * rb), 1, K, xv));
      for (const config of configs) {
        const got = await runMatVec(gpu, w, xv, 'f32', config);
        const worst = checkRows(got, refs.map((r) => r.y[0]!), refs.map((r) => r.mag[0]!), K, 'f32',
          `${type} lm_head wg=${config.wg} tpr=${config.tpr}`, (i) => sample[i]!);
        console.log(`gguf_matvec ${type} ${K}->${N} wg=${config.wg} tpr=${config.tpr}: ${sample.length} rows, worst err ${worst.toFixed(3)} u sqrt(K) mag`);
      }
      destroyGgufWeight(w);
    });
  }
});
