/**
 * Hugging Face `transformers serve` as a real child process, for the remote engine's tests
 * against a second, independent OpenAI-compatible server. Its Python environment (transformers
 * 5.x, CPU torch) is the one `.ci/run` installs: PIXTRAL_HF_SERVE_VENV, by default
 * ~/.cache/pixtral-webgpu/hf-serve-venv. The served model is the embedded model's decoder as a
 * `MistralForCausalLM` folder, made from ../shared's HF-layout pixtral-tiny-screens by
 * `make_text_model.py` into a temporary folder.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { sharedDir } from '../serve-process.js';

export const hfVenv = resolve(process.env.PIXTRAL_HF_SERVE_VENV ?? join(homedir(), '.cache/pixtral-webgpu/hf-serve-venv'));
export const hfInstalled = existsSync(join(hfVenv, 'bin/transformers'));
/** Seconds allowed for the server to load torch, the model and answer /health. */
const START_TIMEOUT_S = 180;

export interface HfServe {
  child: ChildProcess;
  baseURL: string;
  /** The model id the server is pinned to (its folder). */
  model: string;
  stderr(): string;
  dir: string;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export async function startHfServe(): Promise<HfServe> {
  if (!hfInstalled) throw new Error(`transformers serve is not installed in ${hfVenv} (.ci/run installs it)`);
  const dir = mkdtempSync(join(tmpdir(), 'hf-tiny-screens-'));
  await promisify(execFile)(join(hfVenv, 'bin/python'), [resolve(import.meta.dirname, 'make_text_model.py'), resolve(sharedDir, 'models/pixtral-tiny-screens'), dir]);
  const port = await freePort();
  const child = spawn(join(hfVenv, 'bin/transformers'), ['serve', dir, '--host', '127.0.0.1', '--port', String(port), '--device', 'cpu'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HF_HUB_OFFLINE: '1' },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (err += d.toString()));
  const root = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`transformers serve exited (${child.exitCode}) before answering:\n${err}`);
    if (Date.now() - t0 > START_TIMEOUT_S * 1000) {
      child.kill('SIGTERM');
      throw new Error(`transformers serve did not answer /health within ${START_TIMEOUT_S} s:\n${err}`);
    }
    const ok = await fetch(`${root}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { child, baseURL: `${root}/v1`, model: dir, stderr: () => err, dir };
}

export async function stopHfServe(s: HfServe | undefined): Promise<void> {
  if (!s) return;
  if (s.child.exitCode === null) {
    const exited = new Promise((r) => s.child.on('exit', r));
    s.child.kill('SIGTERM');
    await exited;
  }
  rmSync(s.dir, { recursive: true, force: true });
}
