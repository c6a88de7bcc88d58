/**
 * The Tekken tokenizer carried inside a llama.cpp text GGUF, and its chat layout. llama.cpp's
 * converter writes Tekken as `tokenizer.ggml.model` `gpt2` with `pre` `tekken`: the token list in
 * id order is the specials (token_type 3, CONTROL) followed by the BPE tokens in Tekken rank
 * order as GPT-2 byte-level strings, plus merges. That is exactly a Tekken `tokenizer.json`, so
 * it is handed to the same reader (`src/text/tokenizer-files.ts`), which checks the specials, the
 * byte tokens and the merge order, and encodes with Tekken's rank BPE: ids equal Tekken's.
 * The pre-split regex is not in the file; `pre` `tekken` names Tekken's one pattern.
 */
import { FormatError } from '../errors.js';
import { loadTokenizer, type Tokenizer } from '../text/tokenizer.js';
import type { GgufHeader } from './reader.js';

/** Tekken's pre-split pattern (mistral_common's tekken.json `config.pattern`, every version). */
export const TEKKEN_PATTERN =
  '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

const CONTROL = 3;

/**
 * The Tekken tokenizer of a text GGUF (FormatError when it is not a Tekken vocabulary); its
 * chat-format version is `version`, else the file's `tokenizer.chat_template` (`ggufChatLayout`).
 */
export function ggufTokenizer(h: GgufHeader, opts: { version?: ChatLayout } = {}): Tokenizer {
  return loadTokenizer(ggufTokenizerJson(h), { version: opts.version ?? ggufChatLayout(h) });
}

/**
 * The text GGUF's Tekken vocabulary as a Hugging Face `tokenizer.json` object (what `convert` from
 * a GGUF pair writes as the model's tokenizer file); FormatError when it is not Tekken.
 */
export function ggufTokenizerJson(h: GgufHeader): Record<string, unknown> {
  const where = `${h.source} tokenizer`;
  const model = h.metadata.get('tokenizer.ggml.model');
  const pre = h.metadata.get('tokenizer.ggml.pre');
  if (model !== 'gpt2' || pre !== 'tekken') {
    throw new FormatError(`${where}: tokenizer.ggml.model "${String(model)}" / pre "${String(pre)}" is not Tekken (gpt2 / tekken)`);
  }
  const tokens = h.metadata.get('tokenizer.ggml.tokens');
  const types = h.metadata.get('tokenizer.ggml.token_type');
  const merges = h.metadata.get('tokenizer.ggml.merges');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) throw new FormatError(`${where}: tokenizer.ggml.tokens must be a string array`);
  if (!(types instanceof Int32Array) || types.length !== tokens.length) {
    throw new FormatError(`${where}: tokenizer.ggml.token_type must be an i32 array as long as the tokens`);
  }
  if (!Array.isArray(merges) || !merges.every((m) => typeof m === 'string')) throw new FormatError(`${where}: tokenizer.ggml.merges must be a string array`);
  let numSpecial = 0;
  while (numSpecial < types.length && types[numSpecial] === CONTROL) numSpecial++;
  for (let i = numSpecial; i < types.length; i++) {
    if (types[i] === CONTROL) throw new FormatError(`${where}: control token ${i} (${tokens[i]}) after the first BPE token; Tekken keeps all specials first`);
  }
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  (tokens as string[]).forEach((t, id) => {
    if (t in vocab) throw new FormatError(`${where}: token ${JSON.stringify(t)} appears at ids ${vocab[t]} and ${id}`);
    vocab[t] = id;
  });
  return {
    model: { type: 'BPE', vocab, merges },
    added_tokens: (tokens as string[]).slice(0, numSpecial).map((content, id) => ({ id, content, special: true })),
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: TEKKEN_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    decoder: { type: 'ByteLevel' },
    normalizer: null,
  };
}

/** Mistral's instruct layouts: v3 (`[INST]` turns, Pixtral) and v7 (`[SYSTEM_PROMPT]`, mistral3). */
export type ChatLayout = 'v3' | 'v7';

/**
 * The chat layout named by `tokenizer.chat_template`: llama.cpp's template name
 * (`mistral-v3-tekken`, `mistral-v7-tekken`, ...) or a Jinja text, which is v7 when it uses
 * `[SYSTEM_PROMPT]`, else v3. No template: undefined (the caller's option or default decides).
 */
export function ggufChatLayout(h: GgufHeader): ChatLayout | undefined {
  const t = h.metadata.get('tokenizer.chat_template');
  if (t === undefined) return undefined;
  if (typeof t !== 'string') throw new FormatError(`${h.source}: tokenizer.chat_template must be a string`);
  const named = /^mistral-(v\d+)/.exec(t.trim());
  if (named) {
    if (named[1] === 'v3' || named[1] === 'v7') return named[1];
    throw new FormatError(`${h.source}: chat template "${t}" is not a supported layout (mistral-v3-*, mistral-v7-*)`);
  }
  return t.includes('[SYSTEM_PROMPT]') ? 'v7' : 'v3';
}
