/**
 * Preset sizes: independent hand arithmetic for Pixtral-12B (docs/quantization.md's table:
 * 6.134 GB of q4 layers + 0.377 GB lm_head = 6.51 GB; 8k f16 KV 1.34 GB), parameter counts
 * against the published totals (model cards: Ministral-3 3.4B / 8.4B / 13.5B language models,
 * 0.4B vision encoder; Mistral-Small-3.1 24B), tied-embedding accounting, KV scaling and `fits`.
 * Tolerances: exact where the value is a closed formula; 1% on published rounded totals.
 */
import { describe, expect, it } from 'vitest';
import {
  MINISTRAL_3_14B, MINISTRAL_3_3B, MINISTRAL_3_8B, MISTRAL_SMALL_3_1_24B, PIXTRAL_12B_2409, PRESETS,
  decoderQ4Bytes, fits, kvCacheBytes, memoryAt, presetById, summarize, weightBytes,
} from '../../src/presets.js';
import { configFromHf } from '../../src/config.js';

const within = (got: number, want: number, rel: number) => expect(Math.abs(got - want) / want).toBeLessThanOrEqual(rel);

describe('presets', () => {
  it('Pixtral-12B: q4 decoder 6.51 GB as in docs/quantization.md', () => {
    // One layer: 5120*(4096+2*1024) + 4096*5120 + 3*5120*14336 = 272,629,760 weights.
    const layer = 5120 * (4096 + 2048) + 4096 * 5120 + 3 * 5120 * 14336;
    expect(layer).toBe(272_629_760);
    const w = weightBytes(PIXTRAL_12B_2409);
    expect(w.decoderLayers).toBe((40 * layer * 4.5) / 8);
    expect(w.lmHead).toBe((131072 * 5120 * 4.5) / 8);
    expect(decoderQ4Bytes(PIXTRAL_12B_2409) / 1e9).toBeCloseTo(6.51, 2);
    // 8k f16 KV: 40 x 2 x 8 x 128 x 8192 x 2 bytes = 1.342 GB; f32 twice that.
    expect(kvCacheBytes(PIXTRAL_12B_2409, 8192, 'f16')).toBe(40 * 2 * 8 * 128 * 8192 * 2);
    expect(kvCacheBytes(PIXTRAL_12B_2409, 8192, 'f32')).toBe(2 * kvCacheBytes(PIXTRAL_12B_2409, 8192, 'f16'));
  });

  it('parameter counts match the published sizes', () => {
    const total = (id: string) => {
      const s = summarize(presetById(id)!);
      return s.params;
    };
    within(total('ministral-3-3b').decoder, 3.4e9, 0.01);
    within(total('ministral-3-8b').decoder, 8.4e9, 0.012);
    within(total('ministral-3-14b').decoder, 13.5e9, 0.01);
    within(total('ministral-3-8b').vision, 0.4e9, 0.01);
    const s = total('mistral-small-3.1-24b');
    within(s.decoder + s.vision + s.projector, 24.0e9, 0.01);
    const p = total('pixtral-12b-2409');
    within(p.decoder + p.vision + p.projector, 12.7e9, 0.01);
  });

  it('tied embeddings count one matrix, used as lm_head', () => {
    const w3 = weightBytes(MINISTRAL_3_3B);
    expect(MINISTRAL_3_3B.text.tieWordEmbeddings).toBe(true);
    expect(w3.lmHead).toBe(0);
    expect(decoderQ4Bytes(MINISTRAL_3_3B)).toBe(w3.decoderLayers + w3.embedding);
    const w8 = weightBytes(MINISTRAL_3_8B);
    expect(w8.lmHead).toBe(w8.embedding);
  });

  it('mistral3 presets carry the merger projector without biases and the Ministral-3 YaRN', () => {
    for (const c of [MISTRAL_SMALL_3_1_24B, MINISTRAL_3_3B, MINISTRAL_3_8B, MINISTRAL_3_14B]) {
      expect(c.projector).toEqual({ spatialMergeSize: 2, bias: false, hiddenAct: 'gelu' });
      expect(c.vision.patchSize).toBe(14);
      expect(c.vision.imageSize).toBe(1540);
    }
    expect(MISTRAL_SMALL_3_1_24B.text.rope.type).toBe('default');
    const r = MINISTRAL_3_8B.text.rope;
    expect(r.type === 'yarn' && r.factor * r.originalMaxPositionEmbeddings).toBe(MINISTRAL_3_8B.text.maxPositionEmbeddings);
  });

  it('a preset round-trips through the HF config parser shape', () => {
    // The fields configFromHf produces are the fields a preset has (no stray or missing keys).
    const hf = configFromHf({
      model_type: 'mistral3', spatial_merge_size: 2, multimodal_projector_bias: false,
      vision_config: { hidden_size: 1024, num_attention_heads: 16, num_hidden_layers: 24, intermediate_size: 4096, patch_size: 14, image_size: 1540, head_dim: 64 },
      text_config: { hidden_size: 5120, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, num_hidden_layers: 40, intermediate_size: 32768, vocab_size: 131072, rope_theta: 1e9, max_position_embeddings: 131072 },
    });
    expect(hf).toEqual(MISTRAL_SMALL_3_1_24B);
  });

  it('memory grows with context by exactly the KV cache, and fits() follows total', () => {
    for (const p of PRESETS) {
      const a = memoryAt(p.config, 4096);
      const b = memoryAt(p.config, 32768);
      expect(b.total - a.total).toBe(kvCacheBytes(p.config, 32768) - kvCacheBytes(p.config, 4096));
      expect(a.kvF32).toBe(2 * a.kvF16);
      expect(fits(p.config, a.total)).toBe(true);
      expect(fits(p.config, a.total - 1)).toBe(false);
      expect(summarize(p).fits(b.totalF16Kv, 32768, 'f16')).toBe(true);
    }
    // A 24B model does not fit 8 GB at 4k; Ministral-3-3B does.
    expect(fits(MISTRAL_SMALL_3_1_24B, 8e9)).toBe(false);
    expect(fits(MINISTRAL_3_3B, 8e9)).toBe(true);
  });

  it("visionWeights 'host': two vision layer slots on the GPU instead of the whole encoder", () => {
    const v = PIXTRAL_12B_2409.vision;
    const D = v.hiddenSize;
    // One Pixtral-ViT layer: q, k, v, o [D, D], gate, up, down [D, I], two norms, in f16.
    const layer = 2 * (4 * D * D + 3 * D * v.intermediateSize + 2 * D);
    const gpu = memoryAt(PIXTRAL_12B_2409, 8192);
    const host = memoryAt(PIXTRAL_12B_2409, 8192, { visionWeights: 'host' });
    expect(gpu.visionGpu).toBe(gpu.weights.vision);
    expect(gpu.visionGpu - host.visionGpu).toBe((v.numLayers - 2) * layer);
    expect(gpu.totalF16Kv - host.totalF16Kv).toBe((v.numLayers - 2) * layer);
    console.log(`Pixtral-12B q4 at 8k, f16 KV: ${(gpu.totalF16Kv / 1e9).toFixed(2)} GB, vision on the host ${(host.totalF16Kv / 1e9).toFixed(2)} GB`);
    expect(fits(PIXTRAL_12B_2409, host.totalF16Kv, 8192, 'f16', { visionWeights: 'host' })).toBe(true);
    expect(fits(PIXTRAL_12B_2409, host.totalF16Kv, 8192, 'f16')).toBe(false);
  });
});
