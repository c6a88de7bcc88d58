/**
 * Source checkpoint layouts and tensor naming. Two layouts are recognised:
 *   hf:     config.json + model*.safetensors (or model.safetensors.index.json)
 *   native: params.json + consolidated*.safetensors (Mistral's own release format)
 * Every source name is mapped to the canonical Hugging Face Llava name the manifest uses
 * (`vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
 * `language_model.lm_head.weight`). Native q/k projections are stored in the interleaved
 * (GPT-J) RoPE row order; they are flagged here so the converter applies HF's `permute_for_rope`
 * and both layouts give identical tensors.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { configFromHf, configFromNative, type ModelConfig } from '../src/config.js';
import { FormatError } from '../src/errors.js';
import { Checkpoint } from './safetensors.js';

export type LayoutKind = 'hf' | 'native';

export interface DetectedLayout {
  kind: LayoutKind;
  /** config.json or params.json. */
  configPath: string;
  /** The safetensors files, or the HF index file when there is one. */
  weights: { index: string } | { files: string[] };
}

export interface TokenizerSource {
  path: string;
  file: 'tekken.json' | 'tokenizer.json';
  kind: 'tekken' | 'hf';
}

const HF_WEIGHTS = /^model.*\.safetensors$/;
const NATIVE_WEIGHTS = /^consolidated.*\.safetensors$/;
const HF_INDEX = 'model.safetensors.index.json';

/**
 * Finds the layout of `dir`. When a folder holds both (some Mistral hub repos ship both), HF is
 * used unless `prefer` says otherwise. Neither -> FormatError listing what was looked for.
 */
export async function detectLayout(dir: string, prefer?: LayoutKind): Promise<DetectedLayout> {
  let names: string[];
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new FormatError(`${dir} is not a folder`);
    names = (await readdir(dir)).sort();
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`cannot read input folder ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const has = (n: string) => names.includes(n);
  const hfFiles = names.filter((n) => HF_WEIGHTS.test(n));
  const nativeFiles = names.filter((n) => NATIVE_WEIGHTS.test(n));
  const hf: DetectedLayout | undefined =
    has('config.json') && (has(HF_INDEX) || hfFiles.length)
      ? {
          kind: 'hf',
          configPath: join(dir, 'config.json'),
          weights: has(HF_INDEX) ? { index: join(dir, HF_INDEX) } : { files: hfFiles.map((n) => join(dir, n)) },
        }
      : undefined;
  const native: DetectedLayout | undefined =
    has('params.json') && nativeFiles.length
      ? { kind: 'native', configPath: join(dir, 'params.json'), weights: { files: nativeFiles.map((n) => join(dir, n)) } }
      : undefined;
  const pick = prefer === 'native' ? native ?? hf : hf ?? native;
  if (prefer && pick?.kind !== prefer) {
    throw new FormatError(`${dir}: no ${prefer} layout here (${prefer === 'hf' ? 'config.json + model*.safetensors' : 'params.json + consolidated*.safetensors'})`);
  }
  if (!pick) {
    throw new FormatError(
      `${dir} is not a model folder: looked for config.json + model*.safetensors (or ${HF_INDEX}) [Hugging Face] ` +
        `or params.json + consolidated*.safetensors [Mistral native]; found ${names.length ? names.slice(0, 8).join(', ') + (names.length > 8 ? ` (+${names.length - 8} more)` : '') : 'nothing'}`,
    );
  }
  return pick;
}

type Rule = [RegExp, string];

const NATIVE_RULES: Rule[] = [
  [/^tok_embeddings\.weight$/, 'language_model.model.embed_tokens.weight'],
  [/^norm\.weight$/, 'language_model.model.norm.weight'],
  [/^output\.weight$/, 'language_model.lm_head.weight'],
  [/^layers\.(\d+)\.attention\.w([qkvo])\.weight$/, 'language_model.model.layers.$1.self_attn.$2_proj.weight'],
  [/^layers\.(\d+)\.attention_norm\.weight$/, 'language_model.model.layers.$1.input_layernorm.weight'],
  [/^layers\.(\d+)\.ffn_norm\.weight$/, 'language_model.model.layers.$1.post_attention_layernorm.weight'],
  [/^layers\.(\d+)\.feed_forward\.w1\.weight$/, 'language_model.model.layers.$1.mlp.gate_proj.weight'],
  [/^layers\.(\d+)\.feed_forward\.w2\.weight$/, 'language_model.model.layers.$1.mlp.down_proj.weight'],
  [/^layers\.(\d+)\.feed_forward\.w3\.weight$/, 'language_model.model.layers.$1.mlp.up_proj.weight'],
  [/^vision_encoder\.transformer\.layers\.(\d+)\.attention\.w([qkvo])\.weight$/, 'vision_tower.transformer.layers.$1.attention.$2_proj.weight'],
  [/^vision_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w1\.weight$/, 'vision_tower.transformer.layers.$1.feed_forward.gate_proj.weight'],
  [/^vision_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w2\.weight$/, 'vision_tower.transformer.layers.$1.feed_forward.down_proj.weight'],
  [/^vision_encoder\.transformer\.layers\.(\d+)\.feed_forward\.w3\.weight$/, 'vision_tower.transformer.layers.$1.feed_forward.up_proj.weight'],
  // ln_pre, patch_conv, attention_norm, ffn_norm keep their names under the new prefix.
  [/^vision_encoder\.(.+)$/, 'vision_tower.$1'],
  [/^vision_language_adapter\.w_in\.(weight|bias)$/, 'multi_modal_projector.linear_1.$1'],
  [/^vision_language_adapter\.w_out\.(weight|bias)$/, 'multi_modal_projector.linear_2.$1'],
  // mistral3-family native checkpoints (Mistral-Small-3.1 consolidated.safetensors); not in
  // the fixtures, names as in transformers' convert_mistral3_weights_to_hf.
  [/^pre_mm_projector_norm\.weight$/, 'multi_modal_projector.norm.weight'],
  [/^patch_merger\.merging_layer\.weight$/, 'multi_modal_projector.patch_merger.merging_layer.weight'],
];

const HF_RULES: Rule[] = [
  // mistral3 / transformers v5 prefixes (Mistral3ForConditionalGeneration._checkpoint_conversion_mapping).
  [/^model\.vision_tower\.(.+)$/, 'vision_tower.$1'],
  [/^model\.multi_modal_projector\.(.+)$/, 'multi_modal_projector.$1'],
  [/^model\.language_model\.(.+)$/, 'language_model.model.$1'],
  [/^lm_head\.weight$/, 'language_model.lm_head.weight'],
];

function applyRules(rules: Rule[], name: string): string | undefined {
  for (const [re, to] of rules) if (re.test(name)) return name.replace(re, to);
  return undefined;
}

/** Native (Mistral) name -> canonical name; undefined when the name is not a known weight. */
export function nativeToCanonical(name: string): string | undefined {
  return applyRules(NATIVE_RULES, name);
}

/** HF name (Llava legacy or mistral3 `model.*` names) -> canonical name. */
export function hfToCanonical(name: string): string {
  return applyRules(HF_RULES, name) ?? name;
}

export function canonicalName(kind: LayoutKind, name: string): string | undefined {
  return kind === 'hf' ? hfToCanonical(name) : nativeToCanonical(name);
}

async function readJson(path: string, label: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new FormatError(`cannot read ${label}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new FormatError(`${label} is not a JSON object: ${(e as Error).message}`, { cause: e });
  }
}

export async function readModelConfig(layout: DetectedLayout): Promise<ModelConfig> {
  if (layout.kind === 'hf') return configFromHf(await readJson(layout.configPath, 'config.json'));
  return configFromNative(await readJson(layout.configPath, 'params.json'));
}

export async function openLayoutCheckpoint(layout: DetectedLayout): Promise<Checkpoint> {
  return 'index' in layout.weights ? Checkpoint.openIndex(layout.weights.index) : Checkpoint.open(layout.weights.files);
}

/** `tekken.json` (Mistral's format) is preferred; `tokenizer.json` (HF) otherwise; null if neither. */
export async function findTokenizer(dir: string): Promise<TokenizerSource | null> {
  for (const [file, kind] of [['tekken.json', 'tekken'], ['tokenizer.json', 'hf']] as const) {
    const path = join(dir, file);
    try {
      if ((await stat(path)).isFile()) return { path, file, kind };
    } catch {
      // not there: try the next one
    }
  }
  return null;
}
