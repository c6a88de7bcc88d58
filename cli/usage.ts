import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** A command-line usage error: the command prints it with a hint and exits with code 2. */
export class UsageError extends Error {}

/** Whether a `<model>` argument names a GGUF file (a path or URL ending in .gguf). */
export const isGgufPath = (model: string): boolean => /\.gguf$/i.test(model.split(/[?#]/)[0]!);

/**
 * A `<model>` that names a llama.cpp GGUF needs its vision tower (`--mmproj`), and `--mmproj`
 * goes only with one: throws UsageError otherwise. Every command taking a model checks this.
 */
export function checkGgufArgs(model: string, mmproj: string | undefined): void {
  const gguf = isGgufPath(model);
  if (gguf && mmproj === undefined) throw new UsageError(`${model} is a GGUF: pass its vision tower with --mmproj mmproj.gguf`);
  if (!gguf && mmproj !== undefined) throw new UsageError('--mmproj goes with a text GGUF (model.gguf)');
}

/**
 * Every command's argument parsing: `node:util` parseArgs, strict, positionals allowed; a
 * parse error (unknown flag, missing value) becomes a UsageError.
 */
export function parseCommandArgs<O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A numeric flag's value: undefined when absent; UsageError naming `what` it must be otherwise. */
export function numberFlag(flag: string, v: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`${flag} must be ${what} (got "${v}")`);
  return n;
}

/** `--vision-weights host|gpu` (the `visionWeights` load option): undefined when absent. */
export function visionWeightsFlag(v: string | undefined): 'gpu' | 'host' | undefined {
  if (v === undefined || v === 'gpu' || v === 'host') return v;
  throw new UsageError(`--vision-weights must be host or gpu (got "${v}")`);
}

/** A flag that must be a positive integer (`--max-tokens`, `--context`, ...). */
export const positiveIntFlag = (flag: string, v: string | undefined): number | undefined =>
  numberFlag(flag, v, (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
