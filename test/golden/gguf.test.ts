/**
 * llama.cpp's GGUF files of `fixtures/gguf/kq` (every variant: F16, Q8_0, Q6_K, Q5_K_M, Q4_K_M,
 * Q4_K_S, Q4_0 text + the F16 mmproj) loaded by the GGUF path (header by Range-free Blob reads,
 * mapping, blocks kept as stored, GgufWeights) into the real model, against the float64 goldens
 * computed on gguf-py's dequantisation of the same files: every logit of the prompt and of 8
 * greedy steps, and the greedy tokens exactly.
 *
 * Tolerance: the strict atol/rtol of each case.json (~20x a float32 PyTorch run's error; 1e-4 to
 * 2e-4 on logits). The weights the kernels read are bit-identical to the goldens' (the block
 * decoding is exact), so the only error is float32 arithmetic, as for the converted f32 model;
 * the variants are 0.003 (F16) to 1.4 (Q4_0) apart in their last logits.
 * Where the adapter has subgroup matrices (lavapipe from Mesa 26: `.ci/subgroup-matrix`), the
 * last case runs Q4_K_M's prompts again with the prefill on them: f16 operands, so it is held to
 * the tiled prefill's logits within f16 rounding instead of the goldens' float32 tolerance.
 */
import { describe, expect, it } from 'vitest';
import { getGpu } from '../helpers/gpu.js';
import { expectClose } from '../helpers/close.js';
import { ggufModel } from '../../src/gguf/mapping.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { blobSource } from '../../src/gguf/source.js';
import { GgufWeights } from '../../src/gguf/gpu-weights.js';
import { VisionLanguageModel } from '../../src/model/vlm.js';
import { fixtureUrl } from '../helpers/fixture-url.js';
import { argmax, casePrompt, checkDecoder, loadCase, tol, type GoldenCase } from './cases.js';
import { checkSubgroupMatrix } from '../../src/kernels/subgroup-matrix-check.js';
import { subgroupMatrixIsDefault } from '../../src/kernels/subgroup-matrix.js';

const VARIANTS = ['f16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_k_s', 'q4_0'];
const kq = '/shared/fixtures/gguf/kq';

async function file(name: string) {
  return blobSource(await (await fetch(fixtureUrl(`${kq}/${name}`))).blob(), name);
}

describe('kq GGUF variants through the model, against the float64 goldens', async () => {
  const gpu = await getGpu();
  const mmproj = await file('pixtral-kq-tiny-mmproj-f16.gguf');
  const mmHeader = await readGgufHeader(mmproj);

  for (const variant of VARIANTS) {
    it(`${variant}: text_only and one_image_wide, every logit and 8 greedy tokens`, async () => {
      const text = await file(`pixtral-kq-tiny-text-${variant}.gguf`);
      const model = ggufModel(await readGgufHeader(text), mmHeader);
      const weights = await GgufWeights.upload(gpu, model, { text, mmproj });
      const m = new VisionLanguageModel(gpu, model.config, weights, { maxContext: 128, maxChunk: 32 });
      try {
        for (const name of ['text_only', 'one_image_wide']) {
          const c = await loadCase(`gguf/kq/goldens/${variant}`, name);
          let worst = 0;
          const report = (cc: GoldenCase, what: string, got: Float32Array) => {
            const r = expectClose(got, cc.expected[what]!.data, tol(cc, what, true), `${variant} ${name} ${what}`);
            worst = Math.max(worst, r.maxAbs);
          };
          await checkDecoder(m, c, casePrompt(c, m.config.tokens.img, m.config.vision.patchSize), report);
          console.log(`[golden gguf] ${variant} ${name}: max abs logit err ${worst.toExponential(2)}`);
          expect(worst).toBeGreaterThan(0);
        }
      } finally {
        m.destroy();
        weights.destroy();
      }
    });
  }

  // Last: it makes subgroup matrices the default on this file's device.
  it.runIf(gpu.features.subgroupMatrix)('q4_k_m with the prefill on subgroup matrices: within f16 rounding of the tiled prefill', async () => {
    const text = await file('pixtral-kq-tiny-text-q4_k_m.gguf');
    const model = ggufModel(await readGgufHeader(text), mmHeader);
    const weights = await GgufWeights.upload(gpu, model, { text, mmproj });
    const m = new VisionLanguageModel(gpu, model.config, weights, { maxContext: 128, maxChunk: 32 });
    try {
      const c = await loadCase('gguf/kq/goldens/q4_k_m', 'one_image_wide');
      const prompt = casePrompt(c, m.config.tokens.img, m.config.vision.patchSize);
      expect(subgroupMatrixIsDefault(gpu)).toBe(false);
      const tiled = (await m.prefill(prompt, { returnLogits: true })).logits!.slice();
      // onCpu: the default on lavapipe too, where CPU adapters otherwise keep the tiled kernel.
      expect((await checkSubgroupMatrix(gpu, { onCpu: true })).reason).toBeUndefined();
      const sgm = (await m.prefill(prompt, { returnLogits: true })).logits!;
      const V = m.config.text.vocabSize;
      let d = 0;
      let r = 0;
      let same = 0;
      for (let i = 0; i < tiled.length; i++) {
        d += (sgm[i]! - tiled[i]!) ** 2;
        r += tiled[i]! ** 2;
      }
      const T = tiled.length / V;
      for (let t = 0; t < T; t++) if (argmax(sgm.subarray(t * V, (t + 1) * V)) === argmax(tiled.subarray(t * V, (t + 1) * V))) same++;
      const rel = Math.sqrt(d / r);
      console.log(`[golden gguf subgroupMatrix] q4_k_m one_image_wide vs the tiled prefill: relative RMS ${rel.toExponential(2)}, top-1 the same at ${same}/${T}`);
      // As for the q4 model (pixtral-q4.test.ts): f16 rounding moves the logits by ~5e-4; a wrong tile by tens of percent.
      expect(rel).toBeGreaterThan(0);
      expect(rel).toBeLessThan(4e-3);
      expect(same / T).toBeGreaterThan(0.95);
    } finally {
      m.destroy();
      weights.destroy();
    }
  });
});
