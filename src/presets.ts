/**
 * Named model presets with their REAL dimensions, and what each costs on a GPU with this engine:
 * 4-bit size (decoder linears, token embedding and lm_head in q4g32 = 4.5 bits/weight, see
 * docs/quantization.md; vision encoder + projector f16; RMSNorm weights f32), KV-cache bytes
 * (f32 as the engine allocates today, and f16), activations, and the total at a context length.
 * Pure arithmetic on `ModelConfig`: no GPU, no I/O, so docs and UIs can show "will it fit" before
 * a download.
 *
 * Sources of the dimensions (documented per preset below): Pixtral-12B-2409 from `config.ts`;
 * Mistral-Small-3.1-24B from its published config (as given in the project brief); Ministral-3
 * 3B/8B/14B (2512) text dimensions from NVIDIA Megatron-Bridge's `Ministral3ModelProvider*`
 * (written "compatible with HuggingFace's Ministral-3 model configurations") and the model cards
 * (3B: 26 layers x 3072, 8B: 34 x 4096, 14B: 40 x 5120, all 32 heads / 8 KV heads x 128).
 */
import { PIXTRAL_12B_2409, type ModelConfig, type RopeScaling, type SpecialTokens, type VisionConfig } from './config.js';

import { Q4_BITS_PER_WEIGHT } from './quant/q4.js';

export { PIXTRAL_12B_2409 };

const TOKENS: SpecialTokens = { bos: 1, eos: 2, inst: 3, instEnd: 4, img: 10, imgBreak: 12, imgEnd: 13 };

/** Pixtral-ViT of the mistral3 family (~0.4B): patch 14, longest edge 1540 (110 x 110 patches). */
const MISTRAL3_VISION: VisionConfig = {
  hiddenSize: 1024, numLayers: 24, numHeads: 16, headDim: 64, intermediateSize: 4096, patchSize: 14,
  imageSize: 1540, numChannels: 3, ropeTheta: 10000, normEps: 1e-5, hiddenAct: 'silu',
};

/**
 * Ministral-3 `rope_parameters`: YaRN factor 16 over an original 16384 positions (262144 total),
 * beta_fast 32, beta_slow 1, mscale = mscale_all_dim = 1 (attention factor exactly 1), Llama-4
 * query scale beta 0.1 (from the brief and Megatron-Bridge's Ministral3 provider, which reads it
 * from `rope_parameters.llama_4_scaling_beta`).
 */
const MINISTRAL3_YARN: RopeScaling = {
  type: 'yarn', factor: 16, originalMaxPositionEmbeddings: 16384, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1,
  llama4ScalingBeta: 0.1,
};

function ministral3(hiddenSize: number, numLayers: number, intermediateSize: number, tie: boolean, ropeTheta: number): ModelConfig {
  return {
    modelType: 'mistral3',
    // ASSUMPTION: the model cards say "0.4B vision encoder"; its dimensions are taken equal to
    // Mistral-Small-3.1's Pixtral-ViT (not read from a Ministral-3 config.json).
    vision: MISTRAL3_VISION,
    projector: { spatialMergeSize: 2, bias: false, hiddenAct: 'gelu' },
    text: {
      hiddenSize, numLayers, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize,
      vocabSize: 131072, ropeTheta, normEps: 1e-5, maxPositionEmbeddings: 262144, tieWordEmbeddings: tie,
      rope: MINISTRAL3_YARN,
    },
    tokens: TOKENS,
  };
}

/** Mistral-Small-3.1-24B-Instruct-2503: Pixtral-ViT (patch 14, merge 2) + 24B Mistral decoder. */
export const MISTRAL_SMALL_3_1_24B: ModelConfig = {
  modelType: 'mistral3',
  vision: MISTRAL3_VISION,
  projector: { spatialMergeSize: 2, bias: false, hiddenAct: 'gelu' },
  text: {
    hiddenSize: 5120, numLayers: 40, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 32768,
    vocabSize: 131072, ropeTheta: 1e9, normEps: 1e-5, maxPositionEmbeddings: 131072, tieWordEmbeddings: false,
    rope: { type: 'default' },
  },
  tokens: TOKENS,
};

/** Ministral-3-3B-*-2512: 26 x 3072, MLP 9216, tied embeddings (Megatron-Bridge: share_embeddings_and_output_weights). */
export const MINISTRAL_3_3B: ModelConfig = ministral3(3072, 26, 9216, true, 1e6);
/** Ministral-3-8B-*-2512: 34 x 4096, MLP 14336, untied lm_head. */
export const MINISTRAL_3_8B: ModelConfig = ministral3(4096, 34, 14336, false, 1e6);
/**
 * Ministral-3-14B-*-2512: 40 x 5120, MLP 16384, untied lm_head. rope_theta: Megatron-Bridge's
 * 14B provider sets 1e9 (the 3B/8B 1e6); not cross-checked against the hub config.json. Theta
 * does not change any size below.
 */
export const MINISTRAL_3_14B: ModelConfig = ministral3(5120, 40, 16384, false, 1e9);

export interface Preset {
  id: string;
  name: string;
  /** Hugging Face repository of the weights to convert. */
  hfRepo: string;
  config: ModelConfig;
}

export const PRESETS: readonly Preset[] = [
  { id: 'pixtral-12b-2409', name: 'Pixtral-12B-2409', hfRepo: 'mistral-community/pixtral-12b', config: PIXTRAL_12B_2409 },
  { id: 'mistral-small-3.1-24b', name: 'Mistral-Small-3.1-24B', hfRepo: 'mistralai/Mistral-Small-3.1-24B-Instruct-2503', config: MISTRAL_SMALL_3_1_24B },
  { id: 'ministral-3-3b', name: 'Ministral-3-3B', hfRepo: 'mistralai/Ministral-3-3B-Instruct-2512', config: MINISTRAL_3_3B },
  { id: 'ministral-3-8b', name: 'Ministral-3-8B', hfRepo: 'mistralai/Ministral-3-8B-Instruct-2512', config: MINISTRAL_3_8B },
  { id: 'ministral-3-14b', name: 'Ministral-3-14B', hfRepo: 'mistralai/Ministral-3-14B-Instruct-2512', config: MINISTRAL_3_14B },
];

export function presetById(id: string): Preset | undefined {
  return PRESETS.find((p) => p.id === id);
}

const q4 = (weights: number) => (weights * Q4_BITS_PER_WEIGHT) / 8;

/** Weights of one decoder layer's seven linears. */
export function decoderLayerWeights(c: ModelConfig): number {
  const t = c.text;
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  return t.hiddenSize * (q + 2 * kv) + q * t.hiddenSize + 3 * t.hiddenSize * t.intermediateSize;
}

/** Weights of the vision encoder (patch conv, ln_pre, layers; no biases in Pixtral-ViT). */
export function visionWeights(v: VisionConfig): number {
  const D = v.hiddenSize;
  const layer = 4 * D * D + 3 * D * v.intermediateSize + 2 * D;
  return D * v.numChannels * v.patchSize * v.patchSize + D + v.numLayers * layer;
}

/** Weights of the projector (norm + merging layer for mistral3; linear_1/2 with optional biases). */
export function projectorWeights(c: ModelConfig): number {
  const Dv = c.vision.hiddenSize;
  const Dt = c.text.hiddenSize;
  const m = c.projector.spatialMergeSize;
  const merger = m > 1 ? Dv + m * m * Dv * Dv : 0;
  const bias = c.projector.bias ? 2 * Dt : 0;
  return merger + Dv * Dt + Dt * Dt + bias;
}

export interface WeightBytes {
  /** q4 decoder layers (seven linears each). */
  decoderLayers: number;
  /** q4 lm_head; 0 when tied (the embedding matrix is used). */
  lmHead: number;
  /** q4 token embedding [V, D] (also the lm_head when tied). */
  embedding: number;
  /** f32 RMSNorm weights of the decoder (2 per layer + final). */
  norms: number;
  /** f16 vision encoder. */
  vision: number;
  /** f16 projector. */
  projector: number;
  /** Sum of the above. */
  total: number;
}

/** Bytes of the weights as the converter writes them with `--dtype q4` (vision f16). */
export function weightBytes(c: ModelConfig): WeightBytes {
  const t = c.text;
  const decoderLayers = q4(t.numLayers * decoderLayerWeights(c));
  const embedding = q4(t.vocabSize * t.hiddenSize);
  const lmHead = t.tieWordEmbeddings ? 0 : q4(t.vocabSize * t.hiddenSize);
  const norms = (2 * t.numLayers + 1) * t.hiddenSize * 4;
  const vision = visionWeights(c.vision) * 2;
  const projector = projectorWeights(c) * 2;
  return { decoderLayers, lmHead, embedding, norms, vision, projector, total: decoderLayers + lmHead + embedding + norms + vision + projector };
}

/** The q4 decoder: layers + lm_head (or the tied embedding), the bytes a decode step streams. */
export function decoderQ4Bytes(c: ModelConfig): number {
  const w = weightBytes(c);
  return w.decoderLayers + (c.text.tieWordEmbeddings ? w.embedding : w.lmHead);
}

/**
 * Bytes one decode step reads at context `ctx`: every decoder linear and the lm_head once (the
 * embedding is one row), the norms, and the KV cache rows [0, ctx) of every layer.
 */
export function bytesPerToken(c: ModelConfig, ctx: number, kvDtype: 'f32' | 'f16' = 'f32'): number {
  return decoderQ4Bytes(c) + weightBytes(c).norms + kvCacheBytes(c, ctx, kvDtype);
}

/** KV cache: layers x 2 (K, V) x ctx x kvHeads x headDim x (4 f32 | 2 f16). */
export function kvCacheBytes(c: ModelConfig, ctx: number, dtype: 'f32' | 'f16' = 'f32'): number {
  const t = c.text;
  return t.numLayers * 2 * ctx * t.numKvHeads * t.headDim * (dtype === 'f32' ? 4 : 2);
}

export interface ActivationOptions {
  /** Vision patches budget; default as `planLimits`: (imageSize / patchSize)^2. */
  maxPatches?: number;
  /** Prefill chunk; default 256 as `planLimits`. */
  maxChunk?: number;
}

/**
 * f32 activations the engine allocates once (VisionEncoder, Projector, Decoder constructors):
 * vision [P, 6D] + coords/segments (the im2col rows live in the attention output's buffer and
 * the MLP's [rows, I] chunks in q/k/v's when they fit, else they add their own), projector
 * output [rows, Dt] + one 256-row chunk of its GELU intermediate (+ the mistral3 merger's
 * buffers), decoder [C, 3D + 2q + 2kv + 3I] and the logits row. Excludes the per-call evaluation
 * logits [C, V] and small tables. Dense vision and projector weights assumed (as converted).
 */
export function activationBytes(c: ModelConfig, o: ActivationOptions = {}): number {
  const v = c.vision;
  const t = c.text;
  const P = o.maxPatches ?? (v.imageSize / v.patchSize) ** 2;
  const C = o.maxChunk ?? 256;
  const D = v.hiddenSize;
  const rowLen = v.numChannels * v.patchSize * v.patchSize;
  const mlpFits = Math.floor((P * D) / v.intermediateSize) >= 1;
  const vision = P * (6 * D + 3) + (rowLen > D ? P * rowLen : 0) + (mlpFits ? 0 : 3 * P * v.intermediateSize);
  const m = c.projector.spatialMergeSize;
  const rows = m > 1 ? Math.floor(P / (m * m)) : P;
  const hidden = Math.min(rows, 256) * t.hiddenSize;
  const projector = rows * t.hiddenSize + hidden + (m > 1 ? P * D + rows * (2 + m * m * D + D) : 0);
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  const decoder = C * (1 + 2 * t.hiddenSize + 2 * q + 2 * kv + 3 * t.intermediateSize) + t.hiddenSize + t.vocabSize;
  return 4 * (vision + projector + decoder);
}

/** `memoryAt` options: the activation sizes, and where the vision layers' weights live. */
export interface MemoryOptions extends ActivationOptions {
  /**
   * `loadPixtral`'s `visionWeights`: 'host' keeps the vision layers in host memory and two layer
   * slots on the GPU (the patch conv and ln_pre stay resident). Default 'gpu'.
   */
  visionWeights?: 'gpu' | 'host';
}

/** f16 vision encoder bytes held on the GPU: all of it, or with 'host' the non-layer part + two layer slots. */
export function visionGpuBytes(v: VisionConfig, where: 'gpu' | 'host' = 'gpu'): number {
  const all = visionWeights(v);
  if (where === 'gpu') return 2 * all;
  const layer = v.numLayers ? (all - visionWeights({ ...v, numLayers: 0 })) / v.numLayers : 0;
  return 2 * (all - (v.numLayers - Math.min(2, v.numLayers)) * layer);
}

export interface MemoryEstimate {
  weights: WeightBytes;
  /** Vision encoder bytes on the GPU (`weights.vision`, or two layer slots with visionWeights 'host'). */
  visionGpu: number;
  kvF32: number;
  kvF16: number;
  activations: number;
  /** GPU-held weights + f32 KV (as allocated today) + activations. */
  total: number;
  /** GPU-held weights + f16 KV + activations. */
  totalF16Kv: number;
}

/** GPU memory for a context of `ctx` tokens. */
export function memoryAt(c: ModelConfig, ctx: number, o: MemoryOptions = {}): MemoryEstimate {
  const weights = weightBytes(c);
  const visionGpu = visionGpuBytes(c.vision, o.visionWeights);
  const onGpu = weights.total - weights.vision + visionGpu;
  const kvF32 = kvCacheBytes(c, ctx, 'f32');
  const kvF16 = kvCacheBytes(c, ctx, 'f16');
  const activations = activationBytes(c, o);
  return { weights, visionGpu, kvF32, kvF16, activations, total: onGpu + kvF32 + activations, totalF16Kv: onGpu + kvF16 + activations };
}

/**
 * Whether the model fits an adapter budget (bytes of GPU memory the app may use, e.g. a
 * measured or user-given figure: WebGPU does not report total VRAM) at `ctx` tokens with the
 * KV cache as allocated today (f32), or f16 when asked; `o.visionWeights` 'host' counts two
 * vision layer slots instead of the whole encoder.
 */
export function fits(c: ModelConfig, adapterBytes: number, ctx = 4096, kv: 'f32' | 'f16' = 'f32', o: MemoryOptions = {}): boolean {
  const m = memoryAt(c, ctx, o);
  return (kv === 'f32' ? m.total : m.totalF16Kv) <= adapterBytes;
}

export interface PresetSummary {
  id: string;
  name: string;
  /** Parameters: decoder (incl. embedding), vision encoder, projector. */
  params: { decoder: number; vision: number; projector: number };
  weights: WeightBytes;
  /** Bytes a decode step streams at 4k context (q4 weights + f32 KV rows). */
  bytesPerToken4k: number;
  at4k: MemoryEstimate;
  at32k: MemoryEstimate;
  /** `fits` bound to this preset (f32 KV, 4k context unless given). */
  fits(adapterBytes: number, ctx?: number, kv?: 'f32' | 'f16'): boolean;
}

export function summarize(p: Preset): PresetSummary {
  const c = p.config;
  const t = c.text;
  const emb = t.vocabSize * t.hiddenSize;
  return {
    id: p.id,
    name: p.name,
    params: {
      decoder: t.numLayers * decoderLayerWeights(c) + emb * (t.tieWordEmbeddings ? 1 : 2) + (2 * t.numLayers + 1) * t.hiddenSize,
      vision: visionWeights(c.vision),
      projector: projectorWeights(c),
    },
    weights: weightBytes(c),
    bytesPerToken4k: bytesPerToken(c, 4096),
    at4k: memoryAt(c, 4096),
    at32k: memoryAt(c, 32768),
    fits: (adapterBytes, ctx = 4096, kv = 'f32') => fits(c, adapterBytes, ctx, kv),
  };
}
