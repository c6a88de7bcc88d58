/**
 * The Mistral decoder: token embedding -> N layers of [RMSNorm -> GQA attention with 1D RoPE
 * over the KV cache -> residual -> RMSNorm -> SiLU-gated MLP -> residual] -> final RMSNorm ->
 * lm_head. The query width is heads x head_dim and may differ from the hidden size. Prefill runs
 * in chunks of at most `maxChunk` tokens; decode is the same path with one token, where the
 * linears switch to their matrix-vector kernel and, for q4 and GGUF block weights, norm + q/k/v
 * and norm + gate/up+SiLU run as one dispatch each (q, k, v packed in one row; GGUF: one per run
 * of q/k/v stored back to back), with RoPE and the KV-cache append inside the attention dispatch
 * on GPUs (see `layers`). Activations are allocated once.
 */
import type { TextConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import type { Ctx } from '../gpu/kernel.js';
import { Tensor, writeBuffer } from '../gpu/tensor.js';
import { rmsnorm } from '../kernels/rmsnorm.js';
import { embed, type EmbeddingTable } from '../kernels/embedding.js';
import { ropeKvWrite } from '../kernels/rope-kv-write.js';
import { buildRopeTable, ropeInPlace, type RopeTable } from '../kernels/rope.js';
import { ropeInvFreq, yarnAttentionFactor, yarnInvFreq } from '../kernels/rope-freqs.js';
import { causalAttention, createDecodeScratch, decodeAttention, destroyDecodeScratch, kvWrite, type DecodeScratch } from '../kernels/attention.js';
import {
  canFoldNormGateUp, canFuseGateUp, canFuseQkv, linear, linearAddInto, linearBytes, linearGateUpSilu, linearNormed, linearNormGateUpSilu,
  linearQkv, type Linear,
} from './linear.js';
import { loadLinear, path, type WeightMap } from './weights.js';
import type { KvCache } from './kv-cache.js';

export interface DecoderLayerWeights {
  inputNorm: Tensor; // [D]
  q: Linear; // [Hq*hd, D]
  k: Linear; // [Hkv*hd, D]
  v: Linear; // [Hkv*hd, D]
  o: Linear; // [D, Hq*hd]
  postNorm: Tensor; // [D]
  gate: Linear; // [I, D]
  up: Linear; // [I, D]
  down: Linear; // [D, I]
}

export interface DecoderWeights {
  embed: EmbeddingTable; // [V, D]
  layers: DecoderLayerWeights[];
  norm: Tensor; // [D]
  lmHead: Linear; // [V, D]
}

/** Loads `language_model.model.*` and `language_model.lm_head` (the embedding when tied). */
export function loadDecoderWeights(
  w: WeightMap & { table(name: string): EmbeddingTable },
  c: TextConfig,
  prefix = 'language_model',
): DecoderWeights {
  const lm = path(prefix);
  const m = lm.pp('model');
  const D = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  return {
    embed: w.table(m.key('embed_tokens.weight')),
    layers: Array.from({ length: c.numLayers }, (_, i) => {
      const l = m.pp('layers').pp(i);
      const attn = l.pp('self_attn');
      const mlp = l.pp('mlp');
      return {
        inputNorm: w.tensor(l.key('input_layernorm.weight')),
        q: loadLinear(w, attn.pp('q_proj'), D),
        k: loadLinear(w, attn.pp('k_proj'), D),
        v: loadLinear(w, attn.pp('v_proj'), D),
        o: loadLinear(w, attn.pp('o_proj'), qDim),
        postNorm: w.tensor(l.key('post_attention_layernorm.weight')),
        gate: loadLinear(w, mlp.pp('gate_proj'), D),
        up: loadLinear(w, mlp.pp('up_proj'), D),
        down: loadLinear(w, mlp.pp('down_proj'), c.intermediateSize),
      };
    }),
    norm: w.tensor(m.key('norm.weight')),
    lmHead: c.tieWordEmbeddings ? loadLinear(w, m.pp('embed_tokens'), D) : loadLinear(w, lm.pp('lm_head'), D),
  };
}

/** RoPE frequencies and the attention factor the config asks for (default or YaRN). */
export function decoderRope(c: TextConfig): { invFreq: Float64Array; attnFactor: number; llama4Beta: number; llama4Orig: number } {
  if (c.rope.type === 'default') return { invFreq: ropeInvFreq(c.headDim, c.ropeTheta), attnFactor: 1, llama4Beta: 0, llama4Orig: 1 };
  const r = c.rope;
  return {
    invFreq: yarnInvFreq({
      headDim: c.headDim, theta: c.ropeTheta, factor: r.factor, originalMaxPositionEmbeddings: r.originalMaxPositionEmbeddings,
      betaFast: r.betaFast, betaSlow: r.betaSlow,
    }),
    attnFactor: yarnAttentionFactor(r.factor, r.mscale, r.mscaleAllDim),
    llama4Beta: r.llama4ScalingBeta,
    llama4Orig: r.originalMaxPositionEmbeddings,
  };
}

/** Activations, sized for `maxChunk` tokens (f32). */
interface DecoderActivations {
  ids: Tensor; // [C] u32
  x: Tensor; // [C, D] residual stream
  h: Tensor; // [C, D] normed block input / block output
  q: Tensor; // [C, Hq*hd]
  k: Tensor; // [C, Hkv*hd]
  v: Tensor; // [C, Hkv*hd]
  qkv: Tensor; // [1, Hq*hd + 2 Hkv*hd]: packed q | k | v of a fused decode step
  attn: Tensor; // [C, Hq*hd]
  gate: Tensor; // [C, I]
  up: Tensor; // [C, I]
  act: Tensor; // [C, I]
  last: Tensor; // [1, D] final-normed last row
  logits: Tensor; // [1, V]
}

export class Decoder {
  private readonly acts: DecoderActivations;
  private readonly rope: RopeTable;
  private readonly ropeArgs: ReturnType<typeof decoderRope>;
  private readonly scratch: DecodeScratch;
  private allLogits: Tensor | null = null; // [C, V], allocated when first asked for
  /**
   * Decode (T = 1) fusions: q/k/v in one dispatch, gate/up + SiLU in one, each with the RMSNorm
   * before it folded in (q4, GGUF blocks), the residual adds in the o- and down-projections' epilogues, where
   * the weights allow (`decodeFusions`). On by default; tests turn it off to compare with the unfused kernels.
   */
  fuseDecode = true;
  /**
   * With `fuseDecode`: RoPE and the KV-cache append run inside the decode attention dispatch
   * (5 dispatches per q4 layer, 6 past 256 keys where attention splits its keys: GPUs) instead of
   * in a dispatch of their own before it (6 per layer; CPU adapters keep attention one pass at
   * any context, so 6 there throughout).
   * On by default on GPUs, where a dispatch and its barrier cost more than the few rotations each
   * attention workgroup adds; off on CPU adapters, where SwiftShader measured the folded layer
   * slower (tiny-screens end to end 77-81 vs 88-90 tokens/s, 2026-11-28). Bit-identical either way.
   */
  ropeInAttention: boolean;

  constructor(
    private readonly gpu: Gpu,
    readonly config: TextConfig,
    private readonly weights: DecoderWeights,
    readonly maxChunk: number,
    readonly maxContext: number,
  ) {
    const c = config;
    const C = maxChunk;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const t = (shape: number[], label: string, dtype: 'f32' | 'u32' = 'f32') => Tensor.empty(gpu, shape, dtype, `decoder.${label}`);
    this.acts = {
      ids: t([C], 'ids', 'u32'),
      x: t([C, c.hiddenSize], 'x'),
      h: t([C, c.hiddenSize], 'h'),
      q: t([C, qDim], 'q'),
      k: t([C, kvDim], 'k'),
      v: t([C, kvDim], 'v'),
      qkv: t([1, qDim + 2 * kvDim], 'qkv'),
      attn: t([C, qDim], 'attn'),
      gate: t([C, c.intermediateSize], 'gate'),
      up: t([C, c.intermediateSize], 'up'),
      act: t([C, c.intermediateSize], 'act'),
      last: t([1, c.hiddenSize], 'last'),
      logits: t([1, c.vocabSize], 'logits'),
    };
    this.ropeArgs = decoderRope(c);
    this.rope = buildRopeTable(gpu, this.ropeArgs.invFreq, maxContext);
    this.ropeInAttention = !gpu.isSoftware;
    this.scratch = createDecodeScratch(gpu, maxContext, c.numHeads, c.headDim);
  }

  /** The residual stream [T, D]: embeddings after `embedTokens`, image rows are copied in here. */
  hidden(T: number): Tensor {
    return this.acts.x.view([T, this.config.hiddenSize]);
  }

  /** Writes the chunk's token ids and records their embedding into the residual stream. */
  embedTokens(ctx: Ctx, ids: Uint32Array): void {
    const T = ids.length;
    writeBuffer(this.gpu, this.acts.ids.buffer, 0, ids);
    embed(ctx, this.weights.embed, this.acts.ids.view([T]), this.hidden(T), T);
  }

  /**
   * Records the embedding of one token whose id is already on the GPU (u32 element 0 of `ids`,
   * e.g. the sampler's result) into row 0 of the residual stream: the decode loop feeds a sampled
   * token without the CPU seeing it first.
   */
  embedGpuToken(ctx: Ctx, ids: Tensor): void {
    embed(ctx, this.weights.embed, ids, this.hidden(1), 1);
  }

  /** Records all layers over rows [0, T) of the residual stream at positions pos0..pos0+T-1. */
  layers(ctx: Ctx, T: number, pos0: number, cache: KvCache): void {
    const c = this.config;
    const a = this.acts;
    const D = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const I = c.intermediateSize;
    const x = this.hidden(T);
    const h = a.h.view([T, D]);
    const q = a.q.view([T, qDim]);
    const k = a.k.view([T, kvDim]);
    const v = a.v.view([T, kvDim]);
    const attn = a.attn.view([T, qDim]);
    const r = this.ropeArgs;
    const ropeQ = { tokens: T, heads: c.numHeads, pos0, attnFactor: r.attnFactor, llama4Beta: r.llama4Beta, llama4Orig: r.llama4Orig };
    const ropeK = { tokens: T, heads: c.numKvHeads, pos0, attnFactor: r.attnFactor };
    const mlpScratch = { gate: a.gate, up: a.up };
    this.weights.layers.forEach((l, i) => {
      const kv = cache.layers[i]!;
      if (T === 1 && this.fuseDecode && canFuseQkv(l.q, l.k, l.v)) {
        // Decode, q4 or GGUF blocks: one dispatch for the input norm and q, k, v (GGUF: one per
        // run of them stored back to back) into the packed row [q | k | v], which attention
        // reads through offsets.
        const qkv = a.qkv.view([1, qDim + 2 * kvDim]);
        linearQkv(ctx, l.q, l.k, l.v, x, qkv, { weight: l.inputNorm, eps: c.normEps });
        const nCtx = pos0 + 1;
        if (r.llama4Beta === 0 && this.ropeInAttention) {
          // RoPE on the q and k heads and the k, v cache append inside the attention dispatch
          // (bit-identical to rope_kv_write then attention).
          decodeAttention(ctx, attn, qkv, kv, this.scratch, { nCtx, heads: c.numHeads, qOffset: 0, rope: { table: this.rope, attnFactor: r.attnFactor } });
        } else if (r.llama4Beta === 0) {
          // RoPE on the q and k heads and the k, v cache append: one dispatch, then attention.
          ropeKvWrite(ctx, qkv, this.rope, kv, { qHeads: c.numHeads, pos: pos0, attnFactor: r.attnFactor });
          decodeAttention(ctx, attn, qkv, kv, this.scratch, { nCtx, heads: c.numHeads, qOffset: 0 });
        } else {
          ropeInPlace(ctx, qkv, this.rope, ropeQ);
          ropeInPlace(ctx, qkv, this.rope, { ...ropeK, offset: qDim });
          kvWrite(ctx, kv, qkv, qkv, { tokens: 1, pos0, kView: { offset: qDim }, vView: { offset: qDim + kvDim } });
          decodeAttention(ctx, attn, qkv, kv, this.scratch, { nCtx, heads: c.numHeads, qOffset: 0 });
        }
      } else {
        rmsnorm(ctx, x, l.inputNorm, h, c.normEps);
        linear(ctx, l.q, h, q, T);
        linear(ctx, l.k, h, k, T);
        linear(ctx, l.v, h, v, T);
        ropeInPlace(ctx, q, this.rope, ropeQ);
        ropeInPlace(ctx, k, this.rope, ropeK);
        kvWrite(ctx, kv, k, v, { tokens: T, pos0 });
        if (T === 1) decodeAttention(ctx, attn, q, kv, this.scratch, { nCtx: pos0 + 1, heads: c.numHeads });
        else causalAttention(ctx, attn, q, kv, { tokens: T, heads: c.numHeads, pos0 });
      }
      // x += o(attn); decode, q4: one dispatch, the add is the matvec's epilogue.
      linearAddInto(ctx, l.o, attn, x, T, h, this.fuseDecode);
      if (T === 1 && this.fuseDecode && canFoldNormGateUp(l.gate, l.up)) {
        // Decode, q4 or GGUF blocks: the post-attention norm, gate, up and SiLU in one dispatch.
        linearNormGateUpSilu(ctx, l.gate, l.up, { weight: l.postNorm, eps: c.normEps }, x, a.act.view([1, I]));
      } else {
        rmsnorm(ctx, x, l.postNorm, h, c.normEps);
        // Decode, dense: gate, up and SiLU in one dispatch; otherwise gate, up, silu_mul.
        linearGateUpSilu(ctx, l.gate, l.up, h, a.act.view([T, I]), T, mlpScratch, this.fuseDecode);
      }
      linearAddInto(ctx, l.down, a.act.view([T, I]), x, T, h, this.fuseDecode);
    });
  }

  /** Which decode fusions the weights of layer 0 allow (all layers are stored alike). */
  decodeFusions(): { qkv: boolean; gateUp: boolean } {
    const l = this.weights.layers[0];
    return { qkv: !!l && canFuseQkv(l.q, l.k, l.v), gateUp: !!l && (canFuseGateUp(l.gate, l.up) || canFoldNormGateUp(l.gate, l.up)) };
  }

  /**
   * Weight bytes one decode step reads: every layer's linears and norms, the final norm and
   * lm_head (the embedding reads one row: left out). The numerator of the bandwidth limit.
   */
  decodeWeightBytes(): { layers: number; other: number; total: number } {
    const w = this.weights;
    const layer = (l: DecoderLayerWeights) =>
      [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce((a, x) => a + linearBytes(x), 0) + l.inputNorm.byteLength + l.postNorm.byteLength;
    const layers = w.layers.reduce((a, l) => a + layer(l), 0);
    const other = w.norm.byteLength + linearBytes(w.lmHead);
    return { layers, other, total: layers + other };
  }

  /**
   * Decode (one row at row 0): records the final norm and lm_head into `logits` inside the pass,
   * with no copy to `last`: one dispatch (per lm_head row part) for a q4 lm_head with
   * `fuseDecode`, else rmsnorm into `h` and lm_head on it. Bit-identical to `finalNorm`,
   * `copyLastRow`, `lastLogits`.
   */
  decodeLogits(ctx: Ctx): Tensor {
    const c = this.config;
    const norm = { weight: this.weights.norm, eps: c.normEps };
    linearNormed(ctx, this.weights.lmHead, norm, this.hidden(1), this.acts.logits, this.acts.h, this.fuseDecode);
    return this.acts.logits;
  }

  /** Records the final norm over all T rows into `h` (the last row is then copied by the caller). */
  finalNorm(ctx: Ctx, T: number): Tensor {
    const h = this.acts.h.view([T, this.config.hiddenSize]);
    rmsnorm(ctx, this.hidden(T), this.weights.norm, h, this.config.normEps);
    return h;
  }

  /** Copies row T-1 of the final-normed hidden state to `last` (outside a compute pass). */
  copyLastRow(enc: GPUCommandEncoder, T: number): void {
    const rowBytes = this.config.hiddenSize * 4;
    enc.copyBufferToBuffer(this.acts.h.buffer, (T - 1) * rowBytes, this.acts.last.buffer, 0, rowBytes);
  }

  /** Logits [1, V] of the last position, written by `lastLogits`. */
  get logits(): Tensor {
    return this.acts.logits;
  }

  /** Records lm_head on the last row: logits [1, V]. */
  lastLogits(ctx: Ctx): Tensor {
    linear(ctx, this.weights.lmHead, this.acts.last, this.acts.logits, 1);
    return this.acts.logits;
  }

  /** Records lm_head on all T final-normed rows: logits [T, V] (evaluation). */
  chunkLogits(ctx: Ctx, T: number): Tensor {
    const V = this.config.vocabSize;
    this.allLogits ??= Tensor.empty(this.gpu, [this.maxChunk, V], 'f32', 'decoder.all_logits');
    const out = this.allLogits.view([T, V]);
    linear(ctx, this.weights.lmHead, this.acts.h.view([T, this.config.hiddenSize]), out, T);
    return out;
  }

  destroy(): void {
    for (const t of Object.values(this.acts)) t.destroy();
    this.allLogits?.destroy();
    this.rope.tensor.destroy();
    destroyDecodeScratch(this.scratch);
  }
}
