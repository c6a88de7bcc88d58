/**
 * GGUF text models of `fixtures/gguf/kq` (llama.cpp's converter and quantizer) through the GGUF
 * reader, the name/layout mapping (ne0 first, q/k rows un-interleaved by n_head / n_head_kv) and
 * the CPU dequantisation, into a float64 decoder (test/unit/ref/decoder64.ts), against the
 * float64 goldens computed on gguf-py's dequantisation of the same files.
 *
 * Tolerance: the fixture's strict one (atol 1e-4, rtol 1e-4 on every logit). The goldens are a
 * float64 forward on bit-identical weights, so only float64 summation order differs (~1e-13);
 * a single wrong block or a wrong row permutation moves logits by 1e-2 or more (the variants
 * themselves are 0.003..1.4 apart), and the greedy tokens must be exactly the golden ones.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ggufModel } from '../../src/gguf/mapping.js';
import { readGgufHeader, type GgufHeader } from '../../src/gguf/reader.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { dequantizeTensor, readTensorBytes } from '../../src/gguf/tensor-data.js';
import { expectClose } from '../helpers/close.js';
import { parseSafetensors } from '../helpers/safetensors.js';
import { sharedDir } from '../fixture-server.js';
import { decoderLogits } from './ref/decoder64.js';

const kq = resolve(sharedDir, 'fixtures/gguf/kq');
const VARIANTS = ['f16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_k_s', 'q4_0'] as const;
const STRICT = { atol: 1e-4, rtol: 1e-4 };

function safetensors(path: string) {
  const b = readFileSync(path);
  return parseSafetensors(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

const summary = JSON.parse(readFileSync(resolve(kq, 'goldens/summary.json'), 'utf8')) as {
  variants: Record<string, { gguf_types: Record<string, [string, string]> }>;
};

describe('kq GGUF text models against the float64 goldens', () => {
  let mmproj: GgufHeader;

  for (const variant of VARIANTS) {
    it(`${variant}: mapping, dequantisation, logits and greedy tokens`, async () => {
      mmproj ??= await readGgufHeader(fileSource(resolve(kq, 'pixtral-kq-tiny-mmproj-f16.gguf')));
      const src = fileSource(resolve(kq, `pixtral-kq-tiny-text-${variant}.gguf`));
      const text = await readGgufHeader(src);
      const model = ggufModel(text, mmproj);
      expect(model.config.text).toMatchObject({ hiddenSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 768, vocabSize: 2048, ropeTheta: 1e9 });
      expect(model.config.vision).toMatchObject({ hiddenSize: 256, numLayers: 3, numHeads: 4, headDim: 64, intermediateSize: 512, patchSize: 16, imageSize: 256, ropeTheta: 10000, hiddenAct: 'silu' });
      expect(model.config.tokens).toEqual({ bos: 1, eos: 2, inst: 3, instEnd: 4, img: 10, imgBreak: 12, imgEnd: 13 });
      expect(model.imgBreak?.typeName).toBe('F32');

      // Every tensor's GGUF name and type as the fixture's summary records them.
      const types = summary.variants[variant]!.gguf_types;
      for (const t of model.tensors) {
        const want = types[t.name];
        expect(want, t.name).toBeDefined();
        expect([t.info.name, t.info.typeName], t.name).toEqual(want);
      }

      const weights = new Map<string, Float64Array>();
      for (const t of model.tensors.filter((t) => t.file === 'text')) {
        weights.set(t.name, dequantizeTensor(t, await readTensorBytes(src, t.info)));
      }
      const W = (name: string) => weights.get(name) ?? expect.fail(`no weight ${name}`);

      const dir = resolve(kq, `goldens/${variant}/cases/text_only`);
      const ids = Array.from(safetensors(resolve(dir, 'inputs.safetensors')).input_ids!.data);
      const exp = safetensors(resolve(dir, 'expected.safetensors'));
      const logits = decoderLogits(model.config.text, W, ids);
      const V = model.config.text.vocabSize;
      const flat = new Float64Array(logits.length * V);
      logits.forEach((row, i) => flat.set(row, i * V));
      expectClose(flat, exp.logits!.data, STRICT, `${variant} logits`);

      // Greedy: argmax (lowest index on ties), fed back, 8 steps.
      const seq = [...ids];
      const greedy: number[] = [];
      for (let k = 0; k < 8; k++) {
        const last = k === 0 ? logits[logits.length - 1]! : decoderLogits(model.config.text, W, seq).at(-1)!;
        expectClose(last, exp.greedy_logits!.data.subarray(k * V, (k + 1) * V), STRICT, `${variant} greedy step ${k}`);
        let best = 0;
        for (let i = 1; i < V; i++) if (last[i]! > last[best]!) best = i;
        greedy.push(best);
        seq.push(best);
      }
      expect(greedy).toEqual(Array.from(exp.greedy_tokens!.data));
    });
  }
});
