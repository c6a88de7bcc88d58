/**
 * The tokenizer version the converter records in the manifest (`tokenizer.version`), which picks
 * the chat layout at run time (v3: system prompt in the last user message; v7: `[SYSTEM_PROMPT]`
 * first). Sources, first found wins: `tekken.json`'s `config.version`, then a `tokenizer_version`
 * in `params.json` / `config.json`. A `tokenizer.json` carries none. Pixtral-12B-2409 predates
 * the field and uses v3, so a Pixtral checkpoint that says nothing gets v3; any other model that
 * says nothing gets no version (and a warning), never a guess.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../src/errors.js';
import type { ModelConfig } from '../src/config.js';
import { tokenizerVersion } from '../src/text/tokenizer.js';
import { VERSION_NAME } from '../src/text/tokenizer-files.js';

export const PIXTRAL_DEFAULT_TOKENIZER_VERSION = 'v3';

export interface FoundVersion {
  version: string;
  /** Where it came from, for messages: `tekken.json`, `params.json`, or `default (Pixtral)`. */
  source: string;
}

function check(v: unknown, source: string): FoundVersion | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !VERSION_NAME.test(v)) throw new FormatError(`${source}: tokenizer_version must be a version name like "v3" (got ${JSON.stringify(v)})`);
  return { version: v, source };
}

async function jsonField(path: string, key: string): Promise<unknown> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>)?.[key];
  } catch {
    return undefined; // absent or unreadable: the layout reader reports a bad config.json itself
  }
}

/**
 * The version for a checkpoint folder, given its tokenizer file's bytes and kind; null when
 * nothing says and the model is not Pixtral.
 */
export async function findTokenizerVersion(
  dir: string, tokenizer: { kind: 'tekken' | 'hf'; bytes: Uint8Array } | null, config: ModelConfig,
): Promise<FoundVersion | null> {
  if (tokenizer?.kind === 'tekken') {
    const v = tokenizerVersion(tokenizer.bytes);
    if (v) return { version: v, source: 'tekken.json' };
  }
  for (const file of ['params.json', 'config.json']) {
    const found = check(await jsonField(join(dir, file), 'tokenizer_version'), file);
    if (found) return found;
  }
  if (config.modelType === 'pixtral') return { version: PIXTRAL_DEFAULT_TOKENIZER_VERSION, source: 'default (Pixtral)' };
  return null;
}
