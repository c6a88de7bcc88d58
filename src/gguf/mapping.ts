/**
 * From llama.cpp's two files to the engine's model: the `ModelConfig` their metadata implies, and
 * every canonical tensor (Hugging Face Llava names, `src/weights/tensor-set.ts`) found in them,
 * with the row permutation that undoes llama.cpp's interleaved-RoPE order.
 *
 * - Text GGUF, `general.architecture` `llama` (Pixtral) or `mistral3` (what current llama.cpp
 *   writes for Mistral-Small-3.x and Ministral-3; YaRN and the Llama-4 query scale from its
 *   `mistral3.rope.scaling.*` keys), the keys under that name: `token_embd`/`output` = embed_tokens/lm_head,
 *   `blk.i.attn_{q,k,v,output}`, `ffn_{gate,up,down}`, `attn_norm`/`ffn_norm`, `output_norm`.
 * - mmproj GGUF, `clip` with `clip.projector_type` `pixtral`: `v.patch_embd` (= the HF conv
 *   [D, 3, p, p]), `v.pre_ln`, `v.blk.i.attn_{q,k,v,out}`, `ln1`/`ln2`, `ffn_*`, `mm.1`/`mm.2` =
 *   projector linear_1/linear_2 (mistral3: `mm.input_norm`, `mm.patch_merger`).
 * - GGUF lists ne0 (the contiguous dimension) first, so a [rows, cols] matrix is
 *   shape [cols, rows] with the same bytes: no transpose, only the name and shape change.
 * - llama.cpp's converter permutes q and k rows for interleaved RoPE: in each head of d rows,
 *   GGUF row 2j + p holds HF row p d/2 + j (text q by n_head, text k by n_head_kv, vision q and
 *   k by the vision n_head). `hfRow` undoes it; blocks never straddle rows, so a quantised
 *   tensor is permuted by moving whole rows of blocks, bytes unchanged.
 * - Not in the files, taken from the architecture (as llama.cpp hard-codes them): the vision
 *   RoPE theta 10000, the projector's GELU (implied by `pixtral`), the vision head_dim
 *   (hidden / heads); the image token ids come from the vocabulary (`[IMG]`, `[IMG_BREAK]`,
 *   `[IMG_END]`).
 */
import { FormatError } from '../errors.js';
import type { ModelConfig, RopeScaling, SpecialTokens } from '../config.js';
import { expectedTensors } from '../weights/tensor-set.js';
import type { GgufHeader, GgufTensorInfo, GgufValue } from './reader.js';

/** One canonical tensor and where it lives in the GGUF pair. */
export interface GgufTensorSource {
  /** Canonical (HF) name. */
  name: string;
  /** HF shape, outermost first ([rows, cols] for a matrix). */
  shape: number[];
  file: 'text' | 'mmproj';
  info: GgufTensorInfo;
  /** Set on q/k projections: rows are in llama.cpp's interleaved order, `heads` heads. */
  interleaved?: { heads: number };
}

export interface GgufModel {
  config: ModelConfig;
  tensors: GgufTensorSource[];
  /** llama.cpp's own copy of the [IMG_BREAK] embedding row (`v.token_embd.img_break`), if present. */
  imgBreak?: GgufTensorInfo;
}

/** The HF row of GGUF row `r` of a q/k projection with `rows` rows in `heads` heads. */
export function hfRow(r: number, rows: number, heads: number): number {
  const d = rows / heads;
  const head = Math.floor(r / d);
  const i = r - head * d;
  return head * d + (i & 1) * (d / 2) + (i >> 1);
}

function get(h: GgufHeader, key: string): GgufValue | undefined {
  return h.metadata.get(key);
}

function num(h: GgufHeader, key: string, fallback?: number): number {
  const v = get(h, key);
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (v === undefined && fallback !== undefined) return fallback;
  throw new FormatError(`${h.source}: metadata "${key}" must be a number (got ${v === undefined ? 'nothing' : typeof v})`);
}

function str(h: GgufHeader, key: string): string | undefined {
  const v = get(h, key);
  if (v !== undefined && typeof v !== 'string') throw new FormatError(`${h.source}: metadata "${key}" must be a string`);
  return v;
}

/** The architecture line of a header: `general.architecture` (`llama`, `clip`, ...). */
export function architecture(h: GgufHeader): string {
  return str(h, 'general.architecture') ?? 'unknown';
}

function tokenIds(text: GgufHeader): SpecialTokens {
  const tokens = get(text, 'tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) throw new FormatError(`${text.source}: no tokenizer.ggml.tokens (the image token ids come from the vocabulary)`);
  const id = (name: string): number => {
    const i = (tokens as string[]).indexOf(name);
    if (i < 0) throw new FormatError(`${text.source}: the vocabulary has no ${name} token`);
    return i;
  };
  return {
    bos: num(text, 'tokenizer.ggml.bos_token_id', id('<s>')),
    eos: num(text, 'tokenizer.ggml.eos_token_id', id('</s>')),
    inst: id('[INST]'),
    instEnd: id('[/INST]'),
    img: id('[IMG]'),
    imgBreak: id('[IMG_BREAK]'),
    imgEnd: id('[IMG_END]'),
  };
}

function tensorMap(h: GgufHeader): Map<string, GgufTensorInfo> {
  return new Map(h.tensors.map((t) => [t.name, t]));
}

/** Text architectures read: Pixtral's (`llama`) and current llama.cpp's Mistral-Small-3.x / Ministral-3 (`mistral3`). */
const TEXT_ARCHITECTURES = ['llama', 'mistral3'];

/**
 * RoPE of the text model from `<arch>.rope.*`: default, or YaRN with llama.cpp's keys mapped to
 * the Hugging Face parameters they came from (`convert_hf_to_gguf.py`): `yarn_log_multiplier` is
 * `mscale_all_dim` and `attention.temperature_scale` the Llama-4 query scale's beta. `mscale` is
 * not in the file: 1, as llama.cpp itself assumes (llama-context.cpp, "we assume mscale == 1").
 */
function textRope(text: GgufHeader, arch: string): RopeScaling {
  const scaling = str(text, `${arch}.rope.scaling.type`);
  if (scaling === undefined || scaling === 'none') return { type: 'default' };
  if (scaling !== 'yarn') throw new FormatError(`${text.source}: ${arch}.rope.scaling.type "${scaling}" is not supported (none, yarn)`);
  const key = (k: string) => `${arch}.rope.scaling.${k}`;
  return {
    type: 'yarn',
    factor: num(text, key('factor')),
    originalMaxPositionEmbeddings: num(text, key('original_context_length')),
    betaFast: num(text, key('yarn_beta_fast'), 32),
    betaSlow: num(text, key('yarn_beta_slow'), 1),
    mscale: 1,
    mscaleAllDim: num(text, key('yarn_log_multiplier'), 0),
    llama4ScalingBeta: num(text, `${arch}.attention.temperature_scale`, 0),
  };
}

/** The ModelConfig of a llama.cpp text + mmproj pair (see the module comment for the sources). */
export function ggufConfig(text: GgufHeader, mmproj: GgufHeader): ModelConfig {
  const arch = architecture(text);
  if (!TEXT_ARCHITECTURES.includes(arch)) {
    throw new FormatError(`${text.source}: general.architecture "${arch}" is not ${TEXT_ARCHITECTURES.join(' or ')} (the text model of Pixtral / mistral3)`);
  }
  if (architecture(mmproj) !== 'clip') throw new FormatError(`${mmproj.source}: general.architecture "${architecture(mmproj)}" is not clip (an mmproj file)`);
  const projector = str(mmproj, 'clip.projector_type');
  if (projector !== 'pixtral') throw new FormatError(`${mmproj.source}: clip.projector_type "${String(projector)}" is not pixtral`);
  if (get(mmproj, 'clip.has_vision_encoder') === false) throw new FormatError(`${mmproj.source}: the mmproj has no vision encoder`);
  const rope = textRope(text, arch);
  const t = (k: string) => `${arch}.${k}`;

  const tt = tensorMap(text);
  const embd = tt.get('token_embd.weight');
  if (!embd || embd.shape.length !== 2) throw new FormatError(`${text.source}: no 2-D token_embd.weight`);
  const hiddenSize = num(text, t('embedding_length'));
  const numHeads = num(text, t('attention.head_count'));
  const vHidden = num(mmproj, 'clip.vision.embedding_length');
  const vHeads = num(mmproj, 'clip.vision.attention.head_count');
  const merge = num(mmproj, 'clip.vision.spatial_merge_size', 1);
  const silu = get(mmproj, 'clip.use_silu') === true;
  const gelu = get(mmproj, 'clip.use_gelu') === true;
  if (silu === gelu) throw new FormatError(`${mmproj.source}: exactly one of clip.use_silu / clip.use_gelu must be true`);
  return {
    modelType: merge > 1 ? 'mistral3' : 'pixtral',
    vision: {
      hiddenSize: vHidden,
      numLayers: num(mmproj, 'clip.vision.block_count'),
      numHeads: vHeads,
      headDim: vHidden / vHeads,
      intermediateSize: num(mmproj, 'clip.vision.feed_forward_length'),
      patchSize: num(mmproj, 'clip.vision.patch_size'),
      imageSize: num(mmproj, 'clip.vision.image_size'),
      numChannels: 3,
      ropeTheta: 10000,
      normEps: num(mmproj, 'clip.vision.attention.layer_norm_epsilon', 1e-5),
      hiddenAct: silu ? 'silu' : 'gelu',
    },
    projector: { spatialMergeSize: merge, bias: tensorMap(mmproj).has('mm.1.bias'), hiddenAct: 'gelu' },
    text: {
      hiddenSize,
      numLayers: num(text, t('block_count')),
      numHeads,
      numKvHeads: num(text, t('attention.head_count_kv'), numHeads),
      headDim: num(text, t('attention.key_length'), hiddenSize / numHeads),
      intermediateSize: num(text, t('feed_forward_length')),
      vocabSize: embd.shape[1]!,
      ropeTheta: num(text, t('rope.freq_base'), 1e4),
      normEps: num(text, t('attention.layer_norm_rms_epsilon'), 1e-5),
      maxPositionEmbeddings: num(text, t('context_length'), 131072),
      tieWordEmbeddings: !tt.has('output.weight'),
      rope,
    },
    tokens: tokenIds(text),
  };
}

/** GGUF name of a canonical tensor and the file that holds it; undefined if llama.cpp has none. */
export function ggufName(name: string): { file: 'text' | 'mmproj'; gguf: string } | undefined {
  const fixed: Record<string, [string, 'text' | 'mmproj']> = {
    'language_model.model.embed_tokens.weight': ['token_embd.weight', 'text'],
    'language_model.lm_head.weight': ['output.weight', 'text'],
    'language_model.model.norm.weight': ['output_norm.weight', 'text'],
    'vision_tower.patch_conv.weight': ['v.patch_embd.weight', 'mmproj'],
    'vision_tower.ln_pre.weight': ['v.pre_ln.weight', 'mmproj'],
    'multi_modal_projector.linear_1.weight': ['mm.1.weight', 'mmproj'],
    'multi_modal_projector.linear_1.bias': ['mm.1.bias', 'mmproj'],
    'multi_modal_projector.linear_2.weight': ['mm.2.weight', 'mmproj'],
    'multi_modal_projector.linear_2.bias': ['mm.2.bias', 'mmproj'],
    'multi_modal_projector.norm.weight': ['mm.input_norm.weight', 'mmproj'],
    'multi_modal_projector.patch_merger.merging_layer.weight': ['mm.patch_merger.weight', 'mmproj'],
  };
  const f = fixed[name];
  if (f) return { gguf: f[0], file: f[1] };
  let m = /^language_model\.model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const text: Record<string, string> = {
      'self_attn.q_proj.weight': 'attn_q.weight', 'self_attn.k_proj.weight': 'attn_k.weight',
      'self_attn.v_proj.weight': 'attn_v.weight', 'self_attn.o_proj.weight': 'attn_output.weight',
      'mlp.gate_proj.weight': 'ffn_gate.weight', 'mlp.up_proj.weight': 'ffn_up.weight', 'mlp.down_proj.weight': 'ffn_down.weight',
      'input_layernorm.weight': 'attn_norm.weight', 'post_attention_layernorm.weight': 'ffn_norm.weight',
    };
    const g = text[m[2]!];
    return g ? { file: 'text', gguf: `blk.${m[1]}.${g}` } : undefined;
  }
  m = /^vision_tower\.transformer\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const vision: Record<string, string> = {
      'attention.q_proj.weight': 'attn_q.weight', 'attention.k_proj.weight': 'attn_k.weight',
      'attention.v_proj.weight': 'attn_v.weight', 'attention.o_proj.weight': 'attn_out.weight',
      'attention_norm.weight': 'ln1.weight', 'ffn_norm.weight': 'ln2.weight',
      'feed_forward.gate_proj.weight': 'ffn_gate.weight', 'feed_forward.up_proj.weight': 'ffn_up.weight',
      'feed_forward.down_proj.weight': 'ffn_down.weight',
    };
    const g = vision[m[2]!];
    return g ? { file: 'mmproj', gguf: `v.blk.${m[1]}.${g}` } : undefined;
  }
  return undefined;
}

/**
 * The model of a GGUF pair: its config and every tensor the config needs, checked present with
 * the expected shape (a FormatError names the first that is missing or misshapen).
 */
export function ggufModel(text: GgufHeader, mmproj: GgufHeader): GgufModel {
  const config = ggufConfig(text, mmproj);
  const files = { text: tensorMap(text), mmproj: tensorMap(mmproj) };
  const headers = { text, mmproj };
  const tensors: GgufTensorSource[] = [];
  for (const e of expectedTensors(config)) {
    const where = ggufName(e.name);
    if (!where) throw new FormatError(`no GGUF name is known for ${e.name}`);
    const info = files[where.file].get(where.gguf);
    if (!info) {
      if (e.optional) continue;
      throw new FormatError(`${headers[where.file].source}: missing tensor ${where.gguf} (${e.name})`);
    }
    const shape = [...info.shape].reverse();
    if (shape.length !== e.shape.length || shape.some((n, i) => n !== e.shape[i])) {
      throw new FormatError(`${headers[where.file].source}: ${where.gguf} has shape [${info.shape}] (ne0 first), expected [${[...e.shape].reverse()}] for ${e.name}`);
    }
    tensors.push({ name: e.name, shape, file: where.file, info, ...(e.rope ? { interleaved: { heads: e.rope.heads } } : {}) });
  }
  const imgBreak = files.mmproj.get('v.token_embd.img_break');
  return { config, tensors, ...(imgBreak ? { imgBreak } : {}) };
}
