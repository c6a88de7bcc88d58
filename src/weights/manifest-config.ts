/**
 * Validation of the `config` a manifest carries, run with the rest of `validateManifest` before
 * anything is downloaded or allocated: a negative layer count would load and answer garbage, an
 * EOS id outside the vocabulary would never stop a generation, a NaN dimension would size
 * buffers as NaN. Every problem is reported by its path in the config (`text.numLayers`).
 */
import type { ModelConfig } from '../config.js';

type Json = Record<string, unknown>;

const VISION_DIMS = ['hiddenSize', 'numLayers', 'numHeads', 'headDim', 'intermediateSize', 'patchSize', 'imageSize', 'numChannels'] as const;
const TEXT_DIMS = ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'vocabSize', 'maxPositionEmbeddings'] as const;
const POSITIVE_REALS = ['ropeTheta', 'normEps'] as const;

function section(c: Json, key: string): Json {
  const v = c[key];
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`config.${key} is missing`);
  return v as Json;
}

function positiveInt(o: Json, where: string, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new Error(`config.${where}.${key} is ${JSON.stringify(v) ?? 'missing'}, not a positive integer`);
  }
  return v;
}

function positiveReal(o: Json, where: string, key: string): void {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`config.${where}.${key} is ${JSON.stringify(v) ?? 'missing'}, not a positive number`);
}

/**
 * Throws an Error whose message names the first bad field; `validateManifest` turns it into a
 * FormatError. Returns the config typed.
 */
export function checkConfig(raw: unknown): ModelConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('config is missing');
  const c = raw as Json;
  if (c.modelType !== 'pixtral' && c.modelType !== 'mistral3') throw new Error(`config.modelType ${JSON.stringify(c.modelType)} is not "pixtral" or "mistral3"`);
  const vision = section(c, 'vision');
  const text = section(c, 'text');
  const projector = section(c, 'projector');
  const tokens = section(c, 'tokens');
  for (const k of VISION_DIMS) positiveInt(vision, 'vision', k);
  for (const k of TEXT_DIMS) positiveInt(text, 'text', k);
  for (const k of POSITIVE_REALS) {
    positiveReal(vision, 'vision', k);
    positiveReal(text, 'text', k);
  }
  positiveInt(projector, 'projector', 'spatialMergeSize');
  const heads = text.numHeads as number;
  const kvHeads = text.numKvHeads as number;
  if (heads % kvHeads) throw new Error(`config.text.numHeads ${heads} is not a multiple of numKvHeads ${kvHeads}`);
  const vocab = text.vocabSize as number;
  for (const [name, id] of Object.entries(tokens)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new Error(`config.tokens.${name} is ${JSON.stringify(id) ?? 'missing'}, not a token id inside the vocabulary of ${vocab}`);
    }
  }
  for (const name of ['bos', 'eos', 'img', 'imgBreak', 'imgEnd']) {
    if (tokens[name] === undefined) throw new Error(`config.tokens.${name} is missing`);
  }
  return raw as ModelConfig;
}
