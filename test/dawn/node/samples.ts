/**
 * Inputs for the Node entry and CLI tests: the embedded q4 model folder, sample screenshots of
 * pixtral-tiny-screens with their reference colour answers (the float64 oracle's, which the
 * engine reproduces), and a two-page PDF made of two of them (JPEG pages at the images' size,
 * so at 72 dpi each page renders at the screenshot's own size).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { pdfFromJpegs } from '../../e2e/pdf-writer.js';
import { repoRoot, sharedDir } from '../../fixture-server.js';

export const MODEL_Q4 = join(repoRoot, 'public/models/pixtral-tiny-screens-q4');
export const SAMPLES = join(sharedDir, 'models/pixtral-tiny-screens/samples');
export const BIN = join(repoRoot, 'bin/pixtral-webgpu.js');
export const COLOR_QUESTION = 'What color is the box?';

/** Reference answers of the colour question (samples/questions.json `reference_answer`). */
export const COLOR: Record<string, string> = {
  'screen_00.png': 'orange', 'screen_01.png': 'red', 'screen_02.png': 'green', 'screen_06.png': 'purple', 'screen_09.png': 'blue',
};

/** PDF: page 1 = screen_09 (blue), page 2 = screen_06 (purple). */
export async function twoPagePdf(): Promise<Uint8Array> {
  const pages = [];
  for (const name of ['screen_09.png', 'screen_06.png']) {
    const img = sharp(join(SAMPLES, name));
    const { width, height } = await img.metadata();
    pages.push({ jpeg: new Uint8Array(await img.jpeg({ quality: 95 }).toBuffer()), width: width!, height: height! });
  }
  return pdfFromJpegs(pages);
}

/** The Dawn adapter for child processes: lavapipe unless the caller set an ICD. */
export function dawnEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? '/usr/share/vulkan/icd.d/lvp_icd.json', ...extra };
}

/** What a finished CLI run printed, and its exit code. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`bin/pixtral-webgpu.js`) as a child process on Dawn and collects its output. */
export function runCli(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd, env: dawnEnv(o.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
