/**
 * Model configuration as data. One normalised `ModelConfig` describes Pixtral (Llava + Pixtral-ViT
 * + Mistral) and the mistral3 family (Pixtral-ViT + patch merger + Mistral/Ministral decoder);
 * it is parsed once from Hugging Face `config.json` or Mistral-native `params.json` (by the
 * converter) and stored in the manifest, so the runtime never sees either raw format.
 */
import { FormatError } from './errors.js';

export interface VisionConfig {
  hiddenSize: number; // 1024 for Pixtral-12B
  numLayers: number; // 24
  numHeads: number; // 16
  headDim: number; // 64
  intermediateSize: number; // 4096
  patchSize: number; // 16 (Pixtral), 14 (mistral3)
  imageSize: number; // 1024 (Pixtral), 1540 (mistral3): longest edge and RoPE grid
  numChannels: number; // 3
  ropeTheta: number; // 10000
  normEps: number; // 1e-5
  hiddenAct: 'silu' | 'gelu';
}

export type RopeScaling =
  | { type: 'default' }
  | {
      type: 'yarn';
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      mscale: number;
      mscaleAllDim: number;
      /** Llama-4 style query scale `1 + beta * ln(1 + floor(pos / original))`; 0 = off. */
      llama4ScalingBeta: number;
    };

export interface TextConfig {
  hiddenSize: number; // 5120 (Nemo)
  numLayers: number; // 40
  numHeads: number; // 32
  numKvHeads: number; // 8
  headDim: number; // 128; numHeads * headDim may differ from hiddenSize
  intermediateSize: number; // 14336
  vocabSize: number; // 131072
  ropeTheta: number; // 1e9 (Nemo)
  normEps: number; // 1e-5
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  rope: RopeScaling;
}

export interface ProjectorConfig {
  /** 1: Pixtral's plain MLP; 2: mistral3's RMSNorm + 2x2 patch merger before the MLP. */
  spatialMergeSize: number;
  bias: boolean;
  hiddenAct: 'gelu';
}

export interface SpecialTokens {
  bos: number; // <s> = 1
  eos: number; // </s> = 2
  inst: number; // [INST] = 3
  instEnd: number; // [/INST] = 4
  img: number; // [IMG] = 10
  imgBreak: number; // [IMG_BREAK] = 12
  imgEnd: number; // [IMG_END] = 13
}

export interface ModelConfig {
  modelType: 'pixtral' | 'mistral3';
  vision: VisionConfig;
  projector: ProjectorConfig;
  text: TextConfig;
  tokens: SpecialTokens;
}

const TEKKEN_SPECIALS: SpecialTokens = { bos: 1, eos: 2, inst: 3, instEnd: 4, img: 10, imgBreak: 12, imgEnd: 13 };

/** Pixels per side of one image token: patch for Pixtral, patch * merge for mistral3. */
export function tokenPixels(c: ModelConfig): number {
  return c.vision.patchSize * c.projector.spatialMergeSize;
}

type Json = Record<string, unknown>;

function num(o: Json, key: string, where: string, fallback?: number): number {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (fallback !== undefined && v === undefined) return fallback;
  throw new FormatError(`${where}: "${key}" must be a number (got ${JSON.stringify(v)})`);
}

function obj(o: Json, key: string, where: string): Json {
  const v = o[key];
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
  throw new FormatError(`${where}: "${key}" must be an object`);
}

function parseRope(t: Json, where: string): { theta: number; rope: RopeScaling } {
  const p = (t.rope_parameters ?? t.rope_scaling) as Json | undefined;
  const type = p ? String(p.rope_type ?? p.type ?? 'default') : 'default';
  const theta = num(t, 'rope_theta', where, p && typeof p.rope_theta === 'number' ? (p.rope_theta as number) : 1e6);
  if (!p || type === 'default') return { theta, rope: { type: 'default' } };
  if (type !== 'yarn') throw new FormatError(`${where}: rope type "${type}" is not supported (default, yarn)`);
  return {
    theta,
    rope: {
      type: 'yarn',
      factor: num(p, 'factor', where),
      originalMaxPositionEmbeddings: num(p, 'original_max_position_embeddings', where),
      betaFast: num(p, 'beta_fast', where, 32),
      betaSlow: num(p, 'beta_slow', where, 1),
      mscale: num(p, 'mscale', where, 1),
      mscaleAllDim: num(p, 'mscale_all_dim', where, 0),
      llama4ScalingBeta: num(p, 'llama_4_scaling_beta', where, 0),
    },
  };
}

function parseVision(v: Json, where: string): VisionConfig {
  const hiddenSize = num(v, 'hidden_size', where);
  const numHeads = num(v, 'num_attention_heads', where);
  const act = String(v.hidden_act ?? 'silu');
  if (act !== 'silu' && act !== 'gelu') throw new FormatError(`${where}: vision hidden_act "${act}" unsupported`);
  return {
    hiddenSize,
    numLayers: num(v, 'num_hidden_layers', where),
    numHeads,
    headDim: num(v, 'head_dim', where, hiddenSize / numHeads),
    intermediateSize: num(v, 'intermediate_size', where),
    patchSize: num(v, 'patch_size', where),
    imageSize: num(v, 'image_size', where),
    numChannels: num(v, 'num_channels', where, 3),
    ropeTheta: num(v, 'rope_theta', where, 10000),
    normEps: num(v, 'layer_norm_eps', where, 1e-5),
    hiddenAct: act,
  };
}

/** Hugging Face `config.json` of `llava` (Pixtral) or `mistral3`. */
export function configFromHf(json: Json): ModelConfig {
  const where = 'config.json';
  const modelType = json.model_type;
  if (modelType !== 'llava' && modelType !== 'mistral3') {
    throw new FormatError(`${where}: model_type "${String(modelType)}" is not llava (Pixtral) or mistral3`);
  }
  const v = obj(json, 'vision_config', where);
  if (v.model_type !== undefined && v.model_type !== 'pixtral') {
    throw new FormatError(`${where}: vision_config.model_type "${String(v.model_type)}" is not pixtral`);
  }
  const t = obj(json, 'text_config', where);
  const hiddenSize = num(t, 'hidden_size', where);
  const numHeads = num(t, 'num_attention_heads', where);
  const { theta, rope } = parseRope(t, where);
  const act = String(json.projector_hidden_act ?? 'gelu');
  if (act !== 'gelu') throw new FormatError(`${where}: projector_hidden_act "${act}" unsupported`);
  const vfl = json.vision_feature_layer ?? -1;
  if (vfl !== -1) throw new FormatError(`${where}: vision_feature_layer ${String(vfl)} unsupported (only -1)`);
  const imgTok = num(json, 'image_token_index', where, typeof json.image_token_id === 'number' ? json.image_token_id : 10);
  return {
    modelType: modelType === 'llava' ? 'pixtral' : 'mistral3',
    vision: parseVision(v, where),
    projector: {
      spatialMergeSize: modelType === 'mistral3' ? num(json, 'spatial_merge_size', where, 2) : 1,
      bias: json.multimodal_projector_bias === undefined ? modelType === 'llava' : Boolean(json.multimodal_projector_bias),
      hiddenAct: 'gelu',
    },
    text: {
      hiddenSize,
      numLayers: num(t, 'num_hidden_layers', where),
      numHeads,
      numKvHeads: num(t, 'num_key_value_heads', where, numHeads),
      headDim: num(t, 'head_dim', where, hiddenSize / numHeads),
      intermediateSize: num(t, 'intermediate_size', where),
      vocabSize: num(t, 'vocab_size', where),
      ropeTheta: theta,
      normEps: num(t, 'rms_norm_eps', where, 1e-5),
      maxPositionEmbeddings: num(t, 'max_position_embeddings', where, 131072),
      tieWordEmbeddings: Boolean(t.tie_word_embeddings ?? json.tie_word_embeddings ?? false),
      rope,
    },
    tokens: { ...TEKKEN_SPECIALS, img: imgTok },
  };
}

/** Mistral-native `params.json` (Pixtral-12B-2409 layout: text at top level, `vision_encoder`). */
export function configFromNative(json: Json): ModelConfig {
  const where = 'params.json';
  const v = obj(json, 'vision_encoder', where);
  const dim = num(json, 'dim', where);
  const nHeads = num(json, 'n_heads', where);
  const vHidden = num(v, 'hidden_size', where);
  const vHeads = num(v, 'num_attention_heads', where);
  const merge = num(v, 'spatial_merge_size', where, 1);
  return {
    modelType: merge > 1 ? 'mistral3' : 'pixtral',
    vision: {
      hiddenSize: vHidden,
      numLayers: num(v, 'num_hidden_layers', where),
      numHeads: vHeads,
      headDim: num(v, 'head_dim', where, vHidden / vHeads),
      intermediateSize: num(v, 'intermediate_size', where),
      patchSize: num(v, 'patch_size', where),
      imageSize: num(v, 'image_size', where),
      numChannels: num(v, 'num_channels', where, 3),
      ropeTheta: num(v, 'rope_theta', where, 10000),
      normEps: 1e-5,
      hiddenAct: 'silu',
    },
    projector: { spatialMergeSize: merge, bias: v.adapter_bias === undefined ? true : Boolean(v.adapter_bias), hiddenAct: 'gelu' },
    text: {
      hiddenSize: dim,
      numLayers: num(json, 'n_layers', where),
      numHeads: nHeads,
      numKvHeads: num(json, 'n_kv_heads', where, nHeads),
      headDim: num(json, 'head_dim', where, dim / nHeads),
      intermediateSize: num(json, 'hidden_dim', where),
      vocabSize: num(json, 'vocab_size', where),
      ropeTheta: num(json, 'rope_theta', where, 1e6),
      normEps: num(json, 'norm_eps', where, 1e-5),
      maxPositionEmbeddings: num(json, 'max_position_embeddings', where, 131072),
      tieWordEmbeddings: Boolean(json.tied_embeddings ?? false),
      rope: { type: 'default' },
    },
    tokens: {
      ...TEKKEN_SPECIALS,
      img: num(v, 'image_token_id', where, 10),
      imgBreak: num(v, 'image_break_token_id', where, 12),
      imgEnd: num(v, 'image_end_token_id', where, 13),
    },
  };
}

/** Pixtral-12B-2409 with its real dimensions (Mistral Nemo decoder + 400M Pixtral-ViT). */
export const PIXTRAL_12B_2409: ModelConfig = {
  modelType: 'pixtral',
  vision: {
    hiddenSize: 1024, numLayers: 24, numHeads: 16, headDim: 64, intermediateSize: 4096, patchSize: 16,
    imageSize: 1024, numChannels: 3, ropeTheta: 10000, normEps: 1e-5, hiddenAct: 'silu',
  },
  projector: { spatialMergeSize: 1, bias: true, hiddenAct: 'gelu' },
  text: {
    hiddenSize: 5120, numLayers: 40, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 14336,
    vocabSize: 131072, ropeTheta: 1e9, normEps: 1e-5, maxPositionEmbeddings: 1024000, tieWordEmbeddings: false,
    rope: { type: 'default' },
  },
  tokens: TEKKEN_SPECIALS,
};
