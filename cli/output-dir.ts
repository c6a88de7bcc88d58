/**
 * Crash-safe, user-safe output folder handling. The converter writes into `<out>.tmp-<pid>`
 * beside the target and renames it into place only after `manifest.json` is written, so an
 * interrupted or failed run never leaves a folder that looks like a complete model.
 *
 * What may be written where (checked before anything is written):
 * - the output may not equal, contain or lie inside the input folder, compared after resolving
 *   symlinks (`convert ./proj/ckpt ./proj --force` would otherwise delete the checkpoint);
 * - a non-empty output is refused, and `force` replaces only a previous conversion: a folder
 *   holding our `manifest.json` and nothing but the files that manifest lists.
 */
import { mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { MANIFEST_FORMAT } from '../src/weights/manifest.js';

export class OutputExistsError extends Error {
  constructor(readonly path: string) {
    super(`output folder ${path} exists and is not empty (use --force to replace a previous conversion)`);
    this.name = 'OutputExistsError';
  }
}

/** The output would overwrite something that is not a previous conversion; `--force` does not help. */
export class UnsafeOutputError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`refusing to write to ${path}: ${reason}`);
    this.name = 'UnsafeOutputError';
  }
}

async function entries(path: string): Promise<string[] | null> {
  try {
    const st = await stat(path);
    if (!st.isDirectory()) throw new UnsafeOutputError(path, 'it exists and is not a folder');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return readdir(path);
}

/**
 * `path` with every symlink resolved, also when its last components do not exist yet: the
 * deepest existing ancestor is resolved and the rest appended.
 */
export async function realPathOf(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(await realPathOf(parent), basename(abs));
  }
}

/** Is `inner` equal to or inside `outer` (both real, absolute paths)? */
function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Refuses an output folder that equals, contains or lies inside the input folder. */
export async function checkOutputAgainstInput(input: string, output: string): Promise<void> {
  const inReal = await realPathOf(input);
  const outReal = await realPathOf(output);
  const shown = outReal === resolve(output) ? output : `${output} (${outReal})`;
  if (outReal === inReal) throw new UnsafeOutputError(shown, `it is the input folder ${inReal}`);
  if (within(inReal, outReal)) throw new UnsafeOutputError(shown, `it contains the input folder ${inReal}`);
  if (within(outReal, inReal)) throw new UnsafeOutputError(shown, `it lies inside the input folder ${inReal}`);
}

/**
 * Why the non-empty folder `out` (holding `names`) is not a previous conversion we may replace,
 * or null when it is one.
 */
async function notAConversion(out: string, names: string[]): Promise<string | null> {
  if (!names.includes('manifest.json')) return 'it holds no manifest.json of a previous conversion';
  let m: { format?: unknown; shards?: { name?: unknown }[]; tokenizer?: { file?: unknown } | null };
  try {
    m = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as typeof m;
  } catch {
    return 'its manifest.json is not ours (not JSON)';
  }
  if (!m || m.format !== MANIFEST_FORMAT) return `its manifest.json is not a ${MANIFEST_FORMAT} manifest`;
  const ours = new Set<unknown>(['manifest.json', ...(Array.isArray(m.shards) ? m.shards.map((s) => s?.name) : []), m.tokenizer?.file]);
  const other = names.filter((n) => !ours.has(n));
  if (other.length) return `it holds files the previous conversion did not write: ${other.slice(0, 5).join(', ')}${other.length > 5 ? ', ...' : ''}`;
  return null;
}

/** Throws unless `out` is absent, empty, or (with `force`) a previous conversion. */
async function checkReplaceable(out: string, force: boolean): Promise<void> {
  const existing = await entries(out);
  if (!existing || !existing.length) return;
  if (!force) throw new OutputExistsError(out);
  const why = await notAConversion(out, existing);
  if (why) throw new UnsafeOutputError(out, `--force replaces only a previous conversion, and ${why}`);
}

/** Checks the target and creates a fresh temp folder beside it; returns the temp path. */
export async function prepareOutput(input: string, out: string, force: boolean): Promise<string> {
  await checkOutputAgainstInput(input, out);
  await checkReplaceable(out, force);
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  return tmp;
}

/**
 * Moves the finished temp folder into place, replacing the old target when it is (still) empty
 * or a previous conversion; checked again here because the conversion took a while.
 */
export async function commitOutput(tmp: string, out: string, force: boolean): Promise<void> {
  const existing = await entries(out);
  if (existing === null) {
    await rename(tmp, out);
    return;
  }
  await checkReplaceable(out, force);
  const old = `${out}.old-${process.pid}`;
  await rename(out, old);
  try {
    await rename(tmp, out);
  } catch (e) {
    await rename(old, out);
    throw e;
  }
  await rm(old, { recursive: true, force: true });
}

export async function discardOutput(tmp: string): Promise<void> {
  await rm(tmp, { recursive: true, force: true });
}
