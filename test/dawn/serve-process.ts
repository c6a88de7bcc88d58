/**
 * Starts `pixtral-webgpu serve` as a real child process (`bin/pixtral-webgpu.js`, what `npx
 * pixtral-webgpu` runs) on 127.0.0.1 with a free port, waits for its "listening on"
 * line, and keeps its stderr (one line per request) for the tests to read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const sharedDir = resolve(process.env.PIXTRAL_SHARED_DIR ?? resolve(repoRoot, '../shared'));
/** The embedded demo model (q4), committed under public/. */
export const EMBEDDED_MODEL = resolve(repoRoot, 'public/models/pixtral-tiny-screens-q4');
export const SAMPLES = resolve(sharedDir, 'models/pixtral-tiny-screens/samples');

export interface Sample { image: string; question: string; question_type: string; reference_answer: string }

export function samples(): Sample[] {
  return JSON.parse(readFileSync(resolve(SAMPLES, 'questions.json'), 'utf8')) as Sample[];
}

export function sampleDataUrl(image: string): string {
  return `data:image/png;base64,${readFileSync(resolve(SAMPLES, image)).toString('base64')}`;
}

export interface ServeProcess {
  child: ChildProcess;
  baseURL: string;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

export async function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  // The published launcher, as `npx pixtral-webgpu` runs it (from source: tsx + the WGSL hook).
  const child = spawn(process.execPath, [resolve(repoRoot, 'bin/pixtral-webgpu.js'), 'serve', EMBEDDED_MODEL, '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((r) => child.on('exit', (code, signal) => r(code ?? signal ?? -1)));
  const baseURL = await new Promise<string>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) ok(`${m[1]}/v1`);
    });
    void exited.then((code) => fail(new Error(`serve exited (${code}) before listening:\n${err}`)));
  });
  return { child, baseURL, stderr: () => err, exited };
}

export async function stopServe(p: ServeProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}
