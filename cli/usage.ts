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
