/**
 * The tensor set a `ModelConfig` implies: every canonical name (Hugging Face Llava naming), its
 * shape, and its role (which decides its stored dtype, see `dtype-policy.ts`). The converter
 * checks a checkpoint against this list, so a missing tensor or a wrong shape is refused before
 * anything is written, and writes tensors in this order, so both source layouts give the same
 * shards byte for byte. Benchmarks build random models of any config from the same list.
 */
import type { ModelConfig } from '../config.js';

export type TensorRole =
  | 'decoder-linear' // q/k/v/o, gate/up/down of the text decoder
  | 'embedding' // language_model.model.embed_tokens
  | 'lm-head' // language_model.lm_head
  | 'vision' // vision tower and projector matrices (incl. the patch conv)
  | 'norm' // RMSNorm weights (1-D)
  | 'bias'; // projector biases (1-D)

export interface ExpectedTensor {
  name: string;
  shape: number[];
  role: TensorRole;
  /** Set on q/k projections: heads and head size, to undo the native (interleaved) RoPE row order. */
  rope?: { heads: number; headDim: number };
  /** Absent from a checkpoint without error (lm_head of a model with tied embeddings). */
  optional?: boolean;
}

export function expectedTensors(c: ModelConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const v = c.vision;
  const vq = v.numHeads * v.headDim;
  out.push({ name: 'vision_tower.patch_conv.weight', shape: [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize], role: 'vision' });
  out.push({ name: 'vision_tower.ln_pre.weight', shape: [v.hiddenSize], role: 'norm' });
  for (let i = 0; i < v.numLayers; i++) {
    const p = `vision_tower.transformer.layers.${i}`;
    const rope = { heads: v.numHeads, headDim: v.headDim };
    out.push({ name: `${p}.attention.q_proj.weight`, shape: [vq, v.hiddenSize], role: 'vision', rope });
    out.push({ name: `${p}.attention.k_proj.weight`, shape: [vq, v.hiddenSize], role: 'vision', rope });
    out.push({ name: `${p}.attention.v_proj.weight`, shape: [vq, v.hiddenSize], role: 'vision' });
    out.push({ name: `${p}.attention.o_proj.weight`, shape: [v.hiddenSize, vq], role: 'vision' });
    out.push({ name: `${p}.attention_norm.weight`, shape: [v.hiddenSize], role: 'norm' });
    out.push({ name: `${p}.feed_forward.gate_proj.weight`, shape: [v.intermediateSize, v.hiddenSize], role: 'vision' });
    out.push({ name: `${p}.feed_forward.up_proj.weight`, shape: [v.intermediateSize, v.hiddenSize], role: 'vision' });
    out.push({ name: `${p}.feed_forward.down_proj.weight`, shape: [v.hiddenSize, v.intermediateSize], role: 'vision' });
    out.push({ name: `${p}.ffn_norm.weight`, shape: [v.hiddenSize], role: 'norm' });
  }

  const t = c.text;
  const m = c.projector.spatialMergeSize;
  if (m > 1) {
    out.push({ name: 'multi_modal_projector.norm.weight', shape: [v.hiddenSize], role: 'norm' });
    out.push({ name: 'multi_modal_projector.patch_merger.merging_layer.weight', shape: [v.hiddenSize, v.hiddenSize * m * m], role: 'vision' });
  }
  out.push({ name: 'multi_modal_projector.linear_1.weight', shape: [t.hiddenSize, v.hiddenSize], role: 'vision' });
  if (c.projector.bias) out.push({ name: 'multi_modal_projector.linear_1.bias', shape: [t.hiddenSize], role: 'bias' });
  out.push({ name: 'multi_modal_projector.linear_2.weight', shape: [t.hiddenSize, t.hiddenSize], role: 'vision' });
  if (c.projector.bias) out.push({ name: 'multi_modal_projector.linear_2.bias', shape: [t.hiddenSize], role: 'bias' });

  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  out.push({ name: 'language_model.model.embed_tokens.weight', shape: [t.vocabSize, t.hiddenSize], role: 'embedding' });
  for (let i = 0; i < t.numLayers; i++) {
    const p = `language_model.model.layers.${i}`;
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [q, t.hiddenSize], role: 'decoder-linear', rope: { heads: t.numHeads, headDim: t.headDim } });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kv, t.hiddenSize], role: 'decoder-linear', rope: { heads: t.numKvHeads, headDim: t.headDim } });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kv, t.hiddenSize], role: 'decoder-linear' });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [t.hiddenSize, q], role: 'decoder-linear' });
    out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [t.intermediateSize, t.hiddenSize], role: 'decoder-linear' });
    out.push({ name: `${p}.mlp.up_proj.weight`, shape: [t.intermediateSize, t.hiddenSize], role: 'decoder-linear' });
    out.push({ name: `${p}.mlp.down_proj.weight`, shape: [t.hiddenSize, t.intermediateSize], role: 'decoder-linear' });
    out.push({ name: `${p}.input_layernorm.weight`, shape: [t.hiddenSize], role: 'norm' });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [t.hiddenSize], role: 'norm' });
  }
  out.push({ name: 'language_model.model.norm.weight', shape: [t.hiddenSize], role: 'norm' });
  out.push({ name: 'language_model.lm_head.weight', shape: [t.vocabSize, t.hiddenSize], role: 'lm-head', optional: t.tieWordEmbeddings });
  return out;
}
