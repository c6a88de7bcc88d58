/**
 * Decode fusions of the GGUF block matvec (shaders/gguf_matvec.wgsl + matvec_common.wgsl) on
 * weights stored back to back in one buffer (`packGgufWeights`, how the loader keeps a layer's
 * q|k|v and gate|up of one block type): a run of them read as one weight (`ggufMatVecMulti`, one
 * dispatch), gate|up + SiLU (`ggufMatVecGateUp`), the RMSNorm before them folded in; the prefill
 * matmul on a packed member; and the decoder on a Q4_K_M file (q|k|v in one buffer in layer 0, q|k
 * + a Q6_K v in layer 1), whose decode must equal the unfused kernels'.
 *
 * Against the unfused kernels on separately uploaded copies of the same blocks (rmsnorm, then
 * ggufMatVec per weight, silu_mul): bit-identical without a norm on every adapter (the same sums at
 * another row offset) and with one on SwiftShader; lavapipe may contract the folded norm's last
 * multiply into the next add (an FMA, as in fused.test.ts), so there the float64 bound alone
 * applies. Against float64 (blocks dequantised exactly, normRef): the bounds of ref/fused-bounds.ts
 * (C u sqrt(K) mag per projection, plus the folded norm's relative input error; the gate/up bound
 * propagated through SiLU). Types: Q4_K, Q6_K, Q8_0, one for each block path of the kernel.
 */
import { describe, expect, it } from 'vitest';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { SupportedType } from '../../src/gguf/types.js';
import {
  defaultGgufMatVecConfig, destroyGgufWeight, ggufMatMul, ggufMatVec, ggufMatVecGateUp, ggufMatVecMulti, packGgufWeights, uploadGgufWeight,
  type GgufMatVecConfig, type GgufWeight,
} from '../../src/kernels/gguf.js';
import { canUseSubgroups } from '../../src/kernels/q4.js';
import { rmsnorm } from '../../src/kernels/rmsnorm.js';
import { siluMul } from '../../src/kernels/silu-mul.js';
import { roundF16 } from '../../src/util/f16.js';
import { activationDtypes, getGpu } from '../helpers/gpu.js';
import { readF32, upload } from '../helpers/act.js';
import { randn } from '../helpers/random.js';
import { fixtureUrl } from '../helpers/fixture-url.js';
import { ggufMatVecRef, synthGguf } from './ref/gguf.js';
import { FTZ, checkTol, foldedNormRel, gateUpRef, normRef, projErr } from './ref/fused-bounds.js';

type Act = 'f32' | 'f16';
const eps = 1e-5;
const K = 512;

/** Members' blocks, packed into one buffer and uploaded alone each (the unfused reference). */
function packedAndAlone(gpu: Gpu, type: SupportedType, rows: number[], seed: number) {
  const bytes = rows.map((N, i) => synthGguf(type, N, K, seed + 31 * i));
  const pack = packGgufWeights(gpu, type, K, rows.map((N, i) => ({ rows: N, label: `m${i}` })), 'pack');
  if (!pack) throw new Error('not packable');
  bytes.forEach((b, i) => pack.write(i, b));
  const alone = bytes.map((b, i) => uploadGgufWeight(gpu, type, rows[i]!, K, b, `alone${i}`));
  return { bytes, packed: pack.weights, alone, destroy: () => [...pack.weights, ...alone].forEach(destroyGgufWeight) };
}

describe('gguf matvec fusions on packed weights', async () => {
  const gpu = await getGpu();
  const dtypes = await activationDtypes();
  const swiftshader = gpu.adapterInfo.architecture === 'swiftshader';
  // The adapter's default split, and the GPU one (threads share rows: the block reduction of
  // both accumulators) where it compiles in seconds (SwiftShader) or with subgroups (lavapipe;
  // f32 activations only there, each variant costing lavapipe seconds of compile).
  const splits: (GgufMatVecConfig & { name: string })[] = [{ name: 'default', ...defaultGgufMatVecConfig(gpu) }];
  if (swiftshader) splits.push({ name: 'shared tpr=32', wg: 128, tpr: 32 });
  else if (canUseSubgroups(gpu, 32)) splits.push({ name: 'subgroups tpr=32', wg: 128, tpr: 32, subgroups: true });

  /** A residual-stream-like x (std 3) and norm weights around 1, rounded as stored. */
  function inputs(seed: number, dtype: Act) {
    const xv = randn(K, seed, 3);
    const wv = randn(K, seed + 1, 0.5).map((v) => 1 + v);
    if (dtype === 'f16') xv.forEach((v, i) => (xv[i] = roundF16(v)));
    return { xv, wv };
  }

  for (const type of ['Q4_K', 'Q6_K', 'Q8_0'] as const satisfies readonly SupportedType[]) {
    for (const dtype of dtypes) {
      it(`${type}, ${dtype}: q|k|v packed, one dispatch, equal to the weights alone; with the norm folded in, within the float64 bound`, async () => {
        // Row counts not multiples of a 4-row block; even (whole words for Q6_K's 210-byte rows).
        const rows = [36, 10, 14];
        const offsets = [0, 36, 46];
        const w = packedAndAlone(gpu, type, rows, 17);
        const { xv, wv } = inputs(5, dtype);
        const x = upload(gpu, xv, dtype, 'x');
        const nw = upload(gpu, wv, 'f32', 'norm.w');
        const h = Tensor.empty(gpu, [K], dtype, 'h');
        let worst = 0;
        for (const config of dtype === 'f32' ? splits : splits.slice(0, 1)) {
          const run = async (norm: boolean, weights: GgufWeight[], multi: boolean) => {
            const y = upload(gpu, new Float32Array(60).fill(1234), dtype, 'y');
            const before = gpu.ledger.dispatches;
            record(gpu, 'qkv', (ctx) => {
              if (multi) ggufMatVecMulti(ctx, weights, x, y, offsets, { config, norm: norm ? { weight: nw, eps } : undefined });
              else {
                if (norm) rmsnorm(ctx, x, nw, h, eps);
                weights.forEach((wt, i) => ggufMatVec(ctx, wt, norm ? h : x, y, { yOffset: offsets[i], config }));
              }
            });
            const dispatches = gpu.ledger.dispatches - before;
            const out = await readF32(y);
            y.destroy();
            return { out, dispatches };
          };
          const packed = await run(false, w.packed, true);
          expect(packed.dispatches).toBe(1);
          expect(Array.from(packed.out), `${config.name}: packed = alone`).toEqual(Array.from((await run(false, w.alone, false)).out));
          // Outputs not adjacent: one dispatch per weight, each at its own offset.
          const y = upload(gpu, new Float32Array(70).fill(1234), dtype, 'y');
          const before = gpu.ledger.dispatches;
          record(gpu, 'apart', (ctx) => ggufMatVecMulti(ctx, w.packed, x, y, [0, 40, 52], { config }));
          expect(gpu.ledger.dispatches - before).toBe(3);
          const apart = await readF32(y);
          y.destroy();
          expect(Array.from(apart.subarray(40, 50))).toEqual(Array.from(packed.out.subarray(36, 46)));
          expect(Array.from(apart.subarray(52, 66))).toEqual(Array.from(packed.out.subarray(46, 60)));
          expect([apart[36], apart[50], apart[51]]).toEqual([1234, 1234, 1234]);

          const fused = await run(true, w.packed, true);
          if (swiftshader) expect(Array.from(fused.out), `${config.name}: norm folded = rmsnorm + alone`).toEqual(Array.from((await run(true, w.alone, false)).out));
          const n = normRef(xv, wv, eps);
          const rel = foldedNormRel(K, dtype);
          rows.forEach((N, i) => {
            const { y: ref, mag } = ggufMatVecRef(type, w.bytes[i]!, N, K, n);
            const refs = Array.from({ length: N }, (_, r) => ({
              ref: ref[r]!,
              tol: projErr(mag[r]!, K, rel) + (dtype === 'f16' ? 2 ** -11 * Math.abs(ref[r]!) : 0) + FTZ,
            }));
            worst = Math.max(worst, checkTol(fused.out, refs, `${config.name} weight ${i}`, (r) => r + offsets[i]!));
          });
        }
        console.log(`gguf norm+qkv ${type} ${dtype}: worst err ${worst.toFixed(3)} x tol`);
        for (const t of [x, nw, h]) t.destroy();
        w.destroy();
      });

      it(`${type}, ${dtype}: gate|up packed + SiLU with the norm folded in, equal to rmsnorm, gate, up, silu_mul; within the float64 bound`, async () => {
        const N = 38;
        const w = packedAndAlone(gpu, type, [N, N], 41);
        const { xv, wv } = inputs(9, dtype);
        const x = upload(gpu, xv, dtype, 'x');
        const nw = upload(gpu, wv, 'f32', 'norm.w');
        const h = Tensor.empty(gpu, [K], dtype, 'h');
        const g = Tensor.empty(gpu, [N], dtype, 'g');
        const u = Tensor.empty(gpu, [N], dtype, 'u');
        let worst = 0;
        for (const config of dtype === 'f32' ? splits : splits.slice(0, 1)) {
          const fusedY = upload(gpu, new Float32Array(N).fill(1234), dtype, 'fused');
          const plainY = upload(gpu, new Float32Array(N).fill(1234), dtype, 'plain');
          record(gpu, 'gate-up', (ctx) => {
            ggufMatVecGateUp(ctx, w.packed[0]!, w.packed[1]!, x, fusedY, { norm: { weight: nw, eps }, config });
            rmsnorm(ctx, x, nw, h, eps);
            ggufMatVec(ctx, w.alone[0]!, h, g, { config });
            ggufMatVec(ctx, w.alone[1]!, h, u, { config });
            siluMul(ctx, g, u, plainY);
          });
          const fused = await readF32(fusedY);
          if (swiftshader) expect(Array.from(fused), config.name).toEqual(Array.from(await readF32(plainY)));
          const n = normRef(xv, wv, eps);
          const gr = ggufMatVecRef(type, w.bytes[0]!, N, K, n);
          const ur = ggufMatVecRef(type, w.bytes[1]!, N, K, n);
          const rel = foldedNormRel(K, dtype);
          const refs = Array.from({ length: N }, (_, i) => gateUpRef(gr.y[i]!, gr.mag[i]!, ur.y[i]!, ur.mag[i]!, K, dtype, rel));
          worst = Math.max(worst, checkTol(fused, refs, config.name));
          // Gate and up swapped is far outside the bound.
          const swapped = Array.from({ length: N }, (_, i) => gateUpRef(ur.y[i]!, ur.mag[i]!, gr.y[i]!, gr.mag[i]!, K, dtype, rel));
          expect(() => checkTol(fused, swapped, 'swapped')).toThrow();
          fusedY.destroy();
          plainY.destroy();
        }
        console.log(`gguf norm+gate/up ${type} ${dtype}: worst err ${worst.toFixed(3)} x tol`);
        for (const t of [x, nw, h, g, u]) t.destroy();
        w.destroy();
      });
    }
  }

  it('Q6_K prefill: the matmul on a packed member (rows at an offset of the buffer) equals the member alone', async () => {
    const w = packedAndAlone(gpu, 'Q6_K', [36, 10, 14], 3);
    const M = 5;
    const x = upload(gpu, randn(M * K, 8), 'f32', 'X');
    for (const i of [1, 2]) {
      const N = w.packed[i]!.rows;
      const a = Tensor.empty(gpu, [M, N], 'f32', 'a');
      const b = Tensor.empty(gpu, [M, N], 'f32', 'b');
      record(gpu, 'matmul', (ctx) => {
        ggufMatMul(ctx, w.packed[i]!, x, a, M);
        ggufMatMul(ctx, w.alone[i]!, x, b, M);
      });
      expect(Array.from(await readF32(a)), `member ${i}`).toEqual(Array.from(await readF32(b)));
      a.destroy();
      b.destroy();
    }
    x.destroy();
    w.destroy();
  });

  it('refuses gate and up that are not in one buffer, and packs that would not be whole words', () => {
    const w = packedAndAlone(gpu, 'Q4_K', [8, 8], 5);
    const x = Tensor.empty(gpu, [K], 'f32', 'x');
    const y = Tensor.empty(gpu, [8], 'f32', 'y');
    const nw = Tensor.empty(gpu, [K], 'f32', 'nw');
    expect(() => record(gpu, 'apart', (ctx) => ggufMatVecGateUp(ctx, w.alone[0]!, w.alone[1]!, x, y, { norm: { weight: nw, eps } }))).toThrow(/one buffer/);
    // Q6_K rows of K = 256 are 210 bytes: 3 rows are not whole 4-byte words.
    expect(packGgufWeights(gpu, 'Q6_K', 256, [{ rows: 3, label: 'a' }, { rows: 4, label: 'b' }], 'odd')).toBeNull();
    gpu.check();
    for (const t of [x, y, nw]) t.destroy();
    w.destroy();
  });
});

describe('decoder on a Q4_K_M GGUF (kq fixture): packed projections, folded norms', async () => {
  const gpu = await getGpu();
  const { ggufModel } = await import('../../src/gguf/mapping.js');
  const { readGgufHeader } = await import('../../src/gguf/reader.js');
  const { blobSource } = await import('../../src/gguf/source.js');
  const { GgufWeights } = await import('../../src/gguf/gpu-weights.js');
  const { VisionLanguageModel } = await import('../../src/model/vlm.js');
  const { casePrompt, loadCase } = await import('../golden/cases.js');
  const { expectSameLogits, greedyDecode, stepDispatches } = await import('../helpers/decode.js');
  const file = async (name: string) => blobSource(await (await fetch(fixtureUrl(`/shared/fixtures/gguf/kq/${name}`))).blob(), name);

  it('layer 0 (q, k, v all Q4_K) reads q|k|v in one dispatch, layer 1 (v Q6_K) in two; decodes like the unfused kernels', async () => {
    const text = await file('pixtral-kq-tiny-text-q4_k_m.gguf');
    const mmproj = await file('pixtral-kq-tiny-mmproj-f16.gguf');
    const model = ggufModel(await readGgufHeader(text), await readGgufHeader(mmproj));
    const weights = await GgufWeights.upload(gpu, model, { text, mmproj });
    const m = new VisionLanguageModel(gpu, model.config, weights, { maxContext: 64, maxChunk: 32 });
    try {
      const total = () => stepDispatches(gpu, m, 10);
      // Per layer [q|k|v or q|k, v] + RoPE/KV append + attention + o (+ residual) + gate|up + SiLU
      // + down (+ residual): 6 + 7; with RoPE and the append inside attention (GPUs) 5 + 6.
      const fold = m.decoder.ropeInAttention;
      m.decoder.ropeInAttention = false;
      expect(total()).toBe(13);
      m.decoder.ropeInAttention = true;
      expect(total()).toBe(11);
      m.decoder.ropeInAttention = fold;
      m.decoder.fuseDecode = false;
      expect(total()).toBe(34); // unfused: 17 per layer
      m.decoder.fuseDecode = true;
      const c = await loadCase('gguf/kq/goldens/q4_k_m', 'text_only');
      const prompt = casePrompt(c, m.config.tokens.img, m.config.vision.patchSize);
      const fused = await greedyDecode(m, prompt, 6, true);
      const plain = await greedyDecode(m, prompt, 6, false);
      expect(fused.ids).toEqual(plain.ids);
      expectSameLogits(gpu, fused.logits, plain.logits);
    } finally {
      m.destroy();
      weights.destroy();
    }
  });
});
