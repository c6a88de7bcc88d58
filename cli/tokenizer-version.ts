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

export const PIXTRAL_DEFAULT_TOKENIZER_VERSION = 'v3';

export interface FoundVersion {
  version: string;
  /** Where it came from, for messages: `tekken.json`, `params.json`, or `default (Pixtral)`. */
  source: string;
}

const VERSION = /^v\d+[\w.-]{0,12}$/;

function check(v: unknown, source: string): FoundVersion | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !VERSION.test(v)) throw new FormatError(`${source}: tokenizer version ${JSON.stringify(v)} is not like "v3" or "v7"`);
  return { version: v, source };
}

/** `config.version` of a tekken.json's bytes, or null when it has none. */
export function tekkenVersion(bytes: Uint8Array): string | null {
  let json: { config?: { version?: unknown } };
  try {
    json = JSON.parse(new TextDecoder().decode(bytes)) as typeof json;
  } catch (e) {
    throw new FormatError(`tekken.json is not JSON: ${(e as Error).message}`, { cause: e });
  }
  return check(json?.config?.version, 'tekken.json')?.version ?? null;
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
    const v = tekkenVersion(tokenizer.bytes);
    if (v) return { version: v, source: 'tekken.json' };
  }
  for (const file of ['params.json', 'config.json']) {
    const found = check(await jsonField(join(dir, file), 'tokenizer_version'), file);
    if (found) return found;
  }
  if (config.modelType === 'pixtral') return { version: PIXTRAL_DEFAULT_TOKENIZER_VERSION, source: 'default (Pixtral)' };
  return null;
}
