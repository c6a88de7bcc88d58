/**
 * The real `pixtral-webgpu` binary (bin/pixtral-webgpu.js from this source checkout: tsx + the
 * WGSL raw-import hook) as a child process on Dawn (lavapipe in CI), on the embedded q4 model:
 * `ask` streams the reference answer; `ask --json` prints one object with answer, stats, model
 * and inputs (a PDF page selected with `file.pdf:2`); `ask --each` answers every file and PDF
 * page (`--per-page`) as JSON lines in `--out`, with an error line for a bad file and exit 0;
 * `--resume` keeps the answered lines and asks only what is missing; a batch of only bad files
 * exits 1; `info` prints the manifest and the adapter. Each model-running process compiles
 * the pipelines anew (slow on lavapipe), so the cases share processes where they can.
 */
import { createServer } from 'node:http';
import { copyFile, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COLOR, COLOR_QUESTION, MODEL_Q4, runCli, SAMPLES, twoPagePdf } from './samples.js';

const run = (args: string[], cwd: string, env: Record<string, string> = {}) => runCli(args, { cwd, env });

const lines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pixtral-cli-'));
  for (const f of ['screen_00.png', 'screen_02.png']) await copyFile(join(SAMPLES, f), join(dir, `scans-${f}`));
  await writeFile(join(dir, 'scans-doc.pdf'), await twoPagePdf());
  await writeFile(join(dir, 'scans-broken.png'), 'this is not a PNG');
});

describe('pixtral-webgpu CLI (child process, Dawn)', () => {
  it('ask streams the reference answer to stdout', async () => {
    const r = await run(['ask', MODEL_Q4, '--image', join(SAMPLES, 'screen_00.png'), '--max-tokens', '4', COLOR_QUESTION], dir);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${COLOR['screen_00.png']}\n`);
  }, 900_000);

  it('ask --json: one object with answer, stats, model and inputs (a PDF page)', async () => {
    const r = await run(['ask', MODEL_Q4, '--image', 'scans-doc.pdf:2', '--dpi', '72', '--json', '--temperature', '0', '--seed', '3', COLOR_QUESTION], dir);
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      answer: COLOR['screen_06.png'],
      stats: { finishReason: 'eos', imagesEncoded: 1 },
      model: { url: MODEL_Q4, name: 'pixtral-tiny-screens', dtype: 'q4', modelType: 'pixtral' },
      inputs: [{ file: 'scans-doc.pdf', page: 2, width: 196, height: 30 }],
    });
  }, 900_000);

  it('ask --each --per-page --out: a line per file and page, an error line for the bad file; --resume asks only what is missing', async () => {
    const out = join(dir, 'answers.jsonl');
    const r = await run(['ask', MODEL_Q4, '--each', 'scans-*.{png,pdf}', '--per-page', '--dpi', '72', '--out', out, '--max-tokens', '4', COLOR_QUESTION], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/answered 3, failed 1, skipped 0/);
    const got = lines(await readFile(out, 'utf8'));
    const answers = got.filter((l) => 'answer' in l).map((l) => [l.file, l.page, l.answer]);
    // Files in sorted order, PDF pages in page order.
    expect(answers).toEqual([
      ['scans-doc.pdf', 1, COLOR['screen_09.png']],
      ['scans-doc.pdf', 2, COLOR['screen_06.png']],
      ['scans-screen_00.png', null, COLOR['screen_00.png']],
      ['scans-screen_02.png', null, COLOR['screen_02.png']],
    ]);
    const errors = got.filter((l) => 'error' in l);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: 'scans-broken.png', page: null, error: { code: 'IMAGE', name: 'ImageError' } });
    expect((errors[0]!.error as { message: string }).message).toContain('scans-broken.png');
    for (const l of got.filter((x) => 'answer' in x)) expect(l.stats).toMatchObject({ finishReason: 'eos' });

    // Resume: one answered line is dropped, as if the run had been interrupted; a new file appears.
    const kept = got.filter((l) => !(l.file === 'scans-doc.pdf' && l.page === 2));
    await writeFile(out, kept.map((l) => JSON.stringify(l)).join('\n') + '\n');
    await copyFile(join(SAMPLES, 'screen_01.png'), join(dir, 'scans-screen_01.png'));
    const again = await run(['ask', MODEL_Q4, '--each', 'scans-*.{png,pdf}', '--per-page', '--dpi', '72', '--out', out, '--resume', '--max-tokens', '4', COLOR_QUESTION], dir);
    expect(again.code, again.stderr).toBe(0);
    const after = lines(await readFile(out, 'utf8'));
    const added = after.slice(kept.length);
    expect(added.filter((l) => 'answer' in l).map((l) => [l.file, l.page, l.answer])).toEqual([
      ['scans-doc.pdf', 2, COLOR['screen_06.png']],
      ['scans-screen_01.png', null, COLOR['screen_01.png']],
    ]);
    expect(added.filter((l) => 'error' in l).map((l) => l.file)).toEqual(['scans-broken.png']);
  }, 1_800_000);

  it('a batch where every file fails exits 1; usage errors exit 2', async () => {
    const r = await run(['ask', MODEL_Q4, '--each', 'scans-broken.*', COLOR_QUESTION], dir);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)).toMatchObject([{ file: 'scans-broken.png', page: null, error: { code: 'IMAGE' } }]);
    const none = await run(['ask', MODEL_Q4, '--each', 'nothing-*.png', COLOR_QUESTION], dir);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no file matches nothing-\*\.png/);
    const usage = await run(['ask', MODEL_Q4, '--image', 'a.png', '--resume', 'q'], dir);
    expect(usage.code).toBe(2);
  }, 900_000);

  it('ask on an http(s) model URL: downloaded into $XDG_CACHE_HOME/pixtral-webgpu with progress on stderr, then answered', async () => {
    const server = createServer((req, res) => {
      readFile(join(MODEL_Q4, new URL(req.url!, 'http://x').pathname.replace(/^\/m\//, ''))).then(
        (b) => res.writeHead(200, { 'content-length': b.length }).end(b),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/m/`;
      const cache = await mkdtemp(join(tmpdir(), 'pixtral-xdg-'));
      // A fresh XDG_CACHE_HOME would also move Mesa's shader cache (lavapipe): every pipeline
      // would be compiled cold by LLVM, minutes on 2 cores. Keep Mesa's where it was.
      const mesa = process.env.MESA_SHADER_CACHE_DIR ?? process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
      const r = await run(['ask', url, '--image', join(SAMPLES, 'screen_02.png'), '--max-tokens', '4', COLOR_QUESTION], dir, {
        XDG_CACHE_HOME: cache, MESA_SHADER_CACHE_DIR: mesa,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${COLOR['screen_02.png']}\n`);
      // Non-TTY stderr: plain lines with bytes, rate and ETA.
      expect(r.stderr).toMatch(/^(download|verify) [\d.]+ [KM]B \/ 1\.7 MB [\d.]+ [KMG]?B\/s ETA /m);
      const [version] = await readdir(join(cache, 'pixtral-webgpu', 'models'));
      expect((await readdir(join(cache, 'pixtral-webgpu', 'models', version!))).sort()).toEqual(['manifest.json', 'shard-00000.bin', 'source.json', 'tekken.json']);
    } finally {
      server.close();
    }
  }, 900_000);

  it('info prints the manifest and the adapter (text and --json)', async () => {
    const t = await run(['info', MODEL_Q4], dir);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^model +pixtral-tiny-screens \(pixtral, q4\)/m);
    expect(t.stdout).toMatch(/^features +shader-f16=(yes|no) subgroups=(yes|no)/m);
    const j = await run(['info', MODEL_Q4, '--json'], dir);
    const info = JSON.parse(j.stdout) as { model: Record<string, unknown>; adapter: { features: Record<string, boolean> } | null; adapterError: string | null };
    expect(info.model).toMatchObject({ name: 'pixtral-tiny-screens', dtype: 'q4', shards: 1, tensors: 63, text: { vocab: 2048, layers: 3 } });
    expect(info.adapterError).toBeNull();
    expect(typeof info.adapter!.features.shaderF16).toBe('boolean');
  }, 300_000);
});
