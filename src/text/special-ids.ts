/**
 * The control tokens a chat prompt is built from, looked up by name in the loaded tokenizer
 * (never assumed), and the check that a model config's token ids (`config.ts` `tokens`, from the
 * manifest) agree with them: a model whose config says `[IMG]` is 10 while its tokenizer has 11
 * would place image features on the wrong positions without any other symptom.
 */
import type { SpecialTokens } from '../config.js';
import { FormatError } from '../errors.js';

/** Each chat control token by the field name the model config uses for it. */
export const SPECIAL_TOKEN_NAMES = {
  bos: '<s>',
  eos: '</s>',
  inst: '[INST]',
  instEnd: '[/INST]',
  img: '[IMG]',
  imgBreak: '[IMG_BREAK]',
  imgEnd: '[IMG_END]',
  system: '[SYSTEM_PROMPT]',
  systemEnd: '[/SYSTEM_PROMPT]',
} as const;

export type SpecialIdName = keyof typeof SPECIAL_TOKEN_NAMES;

/** Ids of the chat control tokens; `undefined` where the tokenizer has no token of that name. */
export type SpecialIds = Readonly<Record<SpecialIdName, number | undefined>>;

export function specialIdsOf(byName: Readonly<Record<string, number>>): SpecialIds {
  const ids = {} as Record<SpecialIdName, number | undefined>;
  for (const key of Object.keys(SPECIAL_TOKEN_NAMES) as SpecialIdName[]) ids[key] = byName[SPECIAL_TOKEN_NAMES[key]];
  return Object.freeze(ids);
}

/** The id of a control token the layout needs; a FormatError when the tokenizer lacks it. */
export function requireId(ids: SpecialIds, key: SpecialIdName, why: string): number {
  const id = ids[key];
  if (id === undefined) throw new FormatError(`the tokenizer has no ${SPECIAL_TOKEN_NAMES[key]} token, needed ${why}`);
  return id;
}

/**
 * Throws FormatError unless every token id of a model config equals the tokenizer's token of
 * that name. `where` names the config in the message (e.g. the manifest's URL).
 */
export function checkSpecialIds(tokens: SpecialTokens, ids: SpecialIds, where = 'model config'): void {
  const wrong: string[] = [];
  for (const key of Object.keys(tokens) as (keyof SpecialTokens)[]) {
    const want = ids[key];
    const name = SPECIAL_TOKEN_NAMES[key];
    if (want === undefined) wrong.push(`${name} (tokens.${key} = ${tokens[key]}) is not in the tokenizer`);
    else if (tokens[key] !== want) wrong.push(`tokens.${key} is ${tokens[key]} but the tokenizer's ${name} is ${want}`);
  }
  if (wrong.length) throw new FormatError(`${where} disagrees with its tokenizer: ${wrong.join('; ')}`);
}
