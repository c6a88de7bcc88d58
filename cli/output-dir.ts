/**
 * Crash-safe output folder handling: the converter writes into `<out>.tmp-<pid>` beside the
 * target and renames it into place only after `manifest.json` is written, so an interrupted or
 * failed run never leaves a folder that looks like a complete model. A non-empty target is
 * refused unless `force` is set.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';

export class OutputExistsError extends Error {
  constructor(readonly path: string) {
    super(`output folder ${path} exists and is not empty (use --force to replace it)`);
    this.name = 'OutputExistsError';
  }
}

async function entries(path: string): Promise<string[] | null> {
  try {
    const st = await stat(path);
    if (!st.isDirectory()) throw new OutputExistsError(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return readdir(path);
}

/** Checks the target and creates a fresh temp folder beside it; returns the temp path. */
export async function prepareOutput(out: string, force: boolean): Promise<string> {
  const existing = await entries(out);
  if (existing && existing.length && !force) throw new OutputExistsError(out);
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  return tmp;
}

/** Moves the finished temp folder into place (replacing the old target when forced). */
export async function commitOutput(tmp: string, out: string): Promise<void> {
  const existing = await entries(out);
  if (existing === null) {
    await rename(tmp, out);
    return;
  }
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
