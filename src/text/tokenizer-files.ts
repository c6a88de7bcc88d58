/**
 * Readers for the two files a Tekken tokenizer ships as: Mistral's `tekken.json` and the Hugging
 * Face `tokenizer.json` conversion of it. Both are reduced to one `TekkenSpec`: the pre-split
 * regex, the special-token names (ids `0..numSpecial-1`), the BPE tokens in rank order
 * (id = rank + numSpecial) and the chat-format version when the file names one, already cut to the requested vocabulary size the way mistral_common's
 * `Tekkenizer` cuts it (ranks at or beyond `vocabSize - numSpecial` are dropped).
 *
 * `tokenizer.json` is accepted only when it is a Tekken (tiktoken-style) BPE: one `Split` regex
 * plus `ByteLevel`, no normalizer, specials at the lowest ids and merges ordered by the rank of
 * the token they produce. Under that condition HF's merge-list BPE and tiktoken's rank BPE are
 * the same algorithm, so the runtime encodes both files with one engine.
 *
 * Pure data handling: no Node-only API, runs in a browser or a worker.
 */
import { FormatError } from '../errors.js';

export interface TekkenSpec {
  source: 'tekken.json' | 'tokenizer.json';
  /** Pre-split regex (JavaScript syntax with the `u` flag). */
  pattern: string;
  /** Special-token names; index = id. */
  specials: string[];
  /** BPE tokens in rank order, as byte strings (one char per byte, 0..255). */
  tokens: string[];
  /** The chat-format version (`config.version` of tekken.json, e.g. `v3`); tokenizer.json has none. */
  version?: string;
}

type Json = Record<string, unknown>;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Special tokens that mistral_common assumes for `tekken.json` files without a `special_tokens`
 * list (`Tekkenizer.DEPRECATED_SPECIAL_TOKENS`, ranks 0..19; Pixtral-12B-2409's own file is one
 * of them); the rest are `<SPECIAL_k>`.
 */
const DEPRECATED_SPECIALS = [
  '<unk>', '<s>', '</s>', '[INST]', '[/INST]', '[AVAILABLE_TOOLS]', '[/AVAILABLE_TOOLS]',
  '[TOOL_RESULTS]', '[/TOOL_RESULTS]', '[TOOL_CALLS]', '[IMG]', '<pad>', '[IMG_BREAK]', '[IMG_END]',
  '[PREFIX]', '[MIDDLE]', '[SUFFIX]', '[SYSTEM_PROMPT]', '[/SYSTEM_PROMPT]', '[TOOL_CONTENT]',
];

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** A tokenizer file given as a JSON string, its UTF-8 bytes, or the parsed value. */
export type TokenizerFileInput = string | ArrayBuffer | ArrayBufferView | object;

export function parseTokenizerJson(file: TokenizerFileInput): unknown {
  let text: string;
  if (typeof file === 'string') text = file;
  else if (file instanceof ArrayBuffer || ArrayBuffer.isView(file)) text = new TextDecoder().decode(file);
  else return file;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new FormatError('tokenizer file is not valid JSON', { cause });
  }
}

/**
 * The chat-format version a tokenizer file names: `config.version` of a `tekken.json` (`"v3"`
 * for Pixtral-12B-2409, `"v7"` for Mistral-Small-3.1), `undefined` for a `tokenizer.json` (which
 * has none: the converter falls back on the checkpoint's own record or its stated default).
 * Any other file is a FormatError. For the converter, to record the version in the manifest.
 */
export function tokenizerVersion(file: TokenizerFileInput): string | undefined {
  const j = parseTokenizerJson(file);
  const format = detectFormat(j);
  if (format === 'tekken.json') return readVersion((j as Json).config as Json, format);
  if (format === 'tokenizer.json') return undefined;
  throw new FormatError('not a tokenizer file: expected tekken.json or tokenizer.json');
}

/** Which format a parsed JSON value is, by structure; undefined when it is neither. */
export function detectFormat(j: unknown): TekkenSpec['source'] | undefined {
  if (!isObj(j)) return undefined;
  if (isObj(j.config) && Array.isArray(j.vocab)) return 'tekken.json';
  if (isObj(j.model) && isObj(j.model.vocab)) return 'tokenizer.json';
  return undefined;
}

export function readTokenizerFile(j: unknown, vocabSize?: number): TekkenSpec {
  if (vocabSize !== undefined && !isCount(vocabSize)) {
    throw new FormatError(`vocabSize must be a non-negative integer (got ${vocabSize})`);
  }
  const format = detectFormat(j);
  if (format === 'tekken.json') return readTekken(j as Json, vocabSize);
  if (format === 'tokenizer.json') return readHF(j as Json, vocabSize);
  throw new FormatError(
    'not a tokenizer file: expected tekken.json ({config, vocab, special_tokens}) or tokenizer.json ({model: {vocab, merges}})',
  );
}

function checkPattern(pattern: unknown, where: string): string {
  if (typeof pattern !== 'string' || !pattern) throw new FormatError(`${where}: missing the pre-split regex pattern`);
  try {
    new RegExp(pattern, 'u');
  } catch (cause) {
    throw new FormatError(`${where}: the pre-split pattern is not a valid JavaScript regex`, { cause });
  }
  return pattern;
}

/** How many BPE ranks a vocabulary of `size` keeps, checked against what the file holds. */
function keptRanks(size: number, numSpecial: number, available: number, where: string): number {
  const n = size - numSpecial;
  if (n < 256) {
    throw new FormatError(`${where}: vocabulary size ${size} leaves ${n} BPE tokens after ${numSpecial} special tokens; at least the 256 byte tokens are needed`);
  }
  if (n > available) {
    throw new FormatError(`${where}: vocabulary size ${size} needs ${n} BPE tokens but the file holds ${available}`);
  }
  return n;
}

function readTekken(j: Json, vocabSize?: number): TekkenSpec {
  const where = 'tekken.json';
  const config = j.config as Json;
  const vocab = j.vocab as unknown[];
  const pattern = checkPattern(config.pattern, where);
  const list = j.special_tokens;
  if (list !== undefined && !Array.isArray(list)) throw new FormatError(`${where}: "special_tokens" must be an array`);
  const numSpecial = config.default_num_special_tokens ?? list?.length;
  if (!isCount(numSpecial)) throw new FormatError(`${where}: config.default_num_special_tokens must be a count`);
  const size = vocabSize ?? config.default_vocab_size ?? numSpecial + vocab.length;
  if (!isCount(size)) throw new FormatError(`${where}: config.default_vocab_size must be a count`);
  const n = keptRanks(size, numSpecial, vocab.length, where);

  const tokens = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const v = vocab[i];
    const b = isObj(v) ? v.token_bytes : undefined;
    if (!isObj(v) || v.rank !== i || typeof b !== 'string' || !BASE64.test(b)) {
      throw new FormatError(`${where}: vocab[${i}] must be {rank: ${i}, token_bytes: <base64>}`);
    }
    const bytes = atob(b);
    if (i < 256 && (bytes.length !== 1 || bytes.charCodeAt(0) !== i)) throw new FormatError(`${where}: rank ${i} must be the single byte ${i}`);
    tokens[i] = bytes;
  }

  const specials = Array.from({ length: numSpecial }, (_, i) => `<SPECIAL_${i}>`);
  const given = list ?? DEPRECATED_SPECIALS.map((token_str, rank) => ({ rank, token_str }));
  given.forEach((s, k) => {
    const rank = isObj(s) ? (s.rank ?? k) : undefined;
    const name = isObj(s) ? s.token_str : undefined;
    if (!isCount(rank) || rank >= numSpecial || typeof name !== 'string' || !name) {
      throw new FormatError(`${where}: special_tokens[${k}] must be {rank < ${numSpecial}, token_str}`);
    }
    specials[rank] = name;
  });
  return { source: where, pattern, specials: uniqueNames(specials, where), tokens, version: readVersion(config, where) };
}

/** A tokenizer version name (`v3`, `v7`, `v11`, ...), as the manifest validates it too. */
export const VERSION_NAME = /^v\d+[\w.-]{0,12}$/;

/** `config.version` of a tekken.json: absent, or a version name such as `v3`, `v7`, `v11`. */
export function readVersion(config: Json, where: string): string | undefined {
  const v = config.version;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !VERSION_NAME.test(v)) {
    throw new FormatError(`${where}: config.version must be a version name like "v3" (got ${JSON.stringify(v)})`);
  }
  return v;
}

function uniqueNames(specials: string[], where: string): string[] {
  const seen = new Set<string>();
  for (const s of specials) {
    if (seen.has(s)) throw new FormatError(`${where}: special token "${s}" appears twice`);
    seen.add(s);
  }
  return specials;
}

/** GPT-2's `bytes_to_unicode` inverse: code unit of a byte-level character -> byte (or -1). */
function byteLevelTable(): Int16Array {
  const table = new Int16Array(512).fill(-1);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[printable ? b : 256 + extra++] = b;
  }
  return table;
}

/** A byte-level token as a byte string; undefined when a character is not byte-level. */
function byteLevelDecode(token: string, table: Int16Array): string | undefined {
  let out = '';
  for (let i = 0; i < token.length; i++) {
    const b = table[token.charCodeAt(i)] ?? -1;
    if (b < 0) return undefined;
    out += String.fromCharCode(b);
  }
  return out;
}

/** The regex of the `Split` pre-tokenizer, required to be followed by a regex-free `ByteLevel`. */
function hfPattern(pre: unknown, where: string): string {
  const steps = isObj(pre) && pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? pre.pretokenizers : [pre];
  const [split, byteLevel] = steps as unknown[];
  const ok =
    steps.length === 2 &&
    isObj(split) && split.type === 'Split' && isObj(split.pattern) && split.behavior === 'Isolated' && !split.invert &&
    isObj(byteLevel) && byteLevel.type === 'ByteLevel' && byteLevel.use_regex === false && !byteLevel.add_prefix_space;
  if (!ok) {
    throw new FormatError(`${where}: pre_tokenizer must be Sequence[Split(Regex, Isolated), ByteLevel(use_regex: false)] as in Tekken conversions`);
  }
  return checkPattern((split.pattern as Json).Regex, `${where} pre_tokenizer`);
}

function readHF(j: Json, vocabSize?: number): TekkenSpec {
  const where = 'tokenizer.json';
  const model = j.model as Json;
  if (model.type !== undefined && model.type !== 'BPE') throw new FormatError(`${where}: model type "${String(model.type)}" is not BPE`);
  if (model.byte_fallback || model.continuing_subword_prefix || model.end_of_word_suffix) {
    throw new FormatError(`${where}: byte_fallback, continuing_subword_prefix and end_of_word_suffix are not used by Tekken`);
  }
  if (j.normalizer != null) throw new FormatError(`${where}: a normalizer is not supported (Tekken has none)`);
  if (j.decoder != null && !(isObj(j.decoder) && j.decoder.type === 'ByteLevel')) {
    throw new FormatError(`${where}: decoder must be ByteLevel`);
  }
  const pattern = hfPattern(j.pre_tokenizer, where);

  // Specials: the added tokens, which must be exactly ids 0..numSpecial-1.
  const added = Array.isArray(j.added_tokens) ? j.added_tokens : [];
  const numSpecial = added.length;
  const specials = new Array<string>(numSpecial);
  for (const a of added) {
    if (!isObj(a) || !isCount(a.id) || a.id >= numSpecial || typeof a.content !== 'string' || specials[a.id] !== undefined) {
      throw new FormatError(`${where}: added_tokens must be the special tokens with ids 0..${numSpecial - 1}`);
    }
    specials[a.id] = a.content;
  }

  // BPE tokens: every other vocab entry, ids numSpecial..numSpecial+count-1 without holes.
  const vocab = model.vocab as Record<string, unknown>;
  let count = 0;
  for (const token in vocab) {
    const id = vocab[token];
    if (!isCount(id)) throw new FormatError(`${where}: vocab id of ${JSON.stringify(token)} is not a count`);
    if (id >= numSpecial) count++;
    else if (specials[id] !== token) throw new FormatError(`${where}: vocab id ${id} (${JSON.stringify(token)}) is not the special token of that id`);
  }
  const size = vocabSize ?? numSpecial + count;
  const n = keptRanks(size, numSpecial, count, where);
  const table = byteLevelTable();
  const tokens = new Array<string>(n);
  for (const token in vocab) {
    const r = (vocab[token] as number) - numSpecial;
    if (r < 0 || r >= n) continue;
    const bytes = byteLevelDecode(token, table);
    if (!bytes) throw new FormatError(`${where}: vocab entry ${JSON.stringify(token)} is not a byte-level string`);
    if (tokens[r] !== undefined) throw new FormatError(`${where}: vocab id ${r + numSpecial} appears twice`);
    tokens[r] = bytes;
  }
  for (let r = 0; r < n; r++) {
    const b = tokens[r];
    if (b === undefined) throw new FormatError(`${where}: no vocab entry has id ${r + numSpecial}`);
    if (r < 256 && (b.length !== 1 || b.charCodeAt(0) !== r)) throw new FormatError(`${where}: id ${r + numSpecial} must be the single byte ${r}`);
  }
  checkMergeOrder(model.merges, vocab, numSpecial + n, where);
  return { source: where, pattern, specials: uniqueNames(specials, where), tokens };
}

/**
 * Merges must be ordered by the id of the token they produce: then applying the lowest merge
 * first (HF) is the same as merging the lowest-rank pair first (tiktoken). Merges producing ids
 * beyond the kept vocabulary are ignored (they are dropped with those tokens).
 */
function checkMergeOrder(merges: unknown, vocab: Record<string, unknown>, size: number, where: string): void {
  if (!Array.isArray(merges)) throw new FormatError(`${where}: model.merges must be an array`);
  let last = -1;
  for (let k = 0; k < merges.length; k++) {
    const m: unknown = merges[k];
    let joined: string | undefined;
    if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp > 0 && m.indexOf(' ', sp + 1) < 0) joined = m.slice(0, sp) + m.slice(sp + 1);
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      joined = m[0] + m[1];
    }
    const id = joined === undefined ? undefined : vocab[joined];
    if (!isCount(id)) throw new FormatError(`${where}: merge ${k} (${JSON.stringify(m)}) does not produce a vocab token`);
    if (id >= size) continue;
    if (id < last) {
      throw new FormatError(`${where}: merges are not ordered by the rank of their result (merge ${k}); only Tekken/tiktoken-style BPE is supported`);
    }
    last = id;
  }
}
