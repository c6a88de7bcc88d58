/**
 * `pixtral-webgpu ask <model> [--image FILE[:pages]]... "question"`: one answer streamed to
 * stdout (or one JSON object with `--json`: answer, stats, model, inputs).
 * `pixtral-webgpu ask model.gguf --mmproj mmproj.gguf ...`: a llama.cpp GGUF pair (paths or
 * http(s) URLs read by Range) instead of a converted model, with the same options.
 * `pixtral-webgpu ask <model> --each 'scans/*.{png,pdf}' "question"`: the same question about
 * each file (each PDF page with `--per-page`), one JSON line per answer (`file`, `page`,
 * `answer`, `stats`; a failed file gets `error` instead) to stdout or `--out`, the model loaded
 * once, a progress bar on a TTY's stderr; `--resume` skips what `--out` already answers.
 * Exit codes: 0 (a batch: at least one file answered, or nothing left to do), 1 failure (a
 * batch: every file failed), 2 usage error, 130 interrupted.
 */
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PixtralError } from '../src/errors.js';
import type { ChatOptions, GenerationStats } from '../src/engine/types.js';
import { loadPixtral, type NodePixtralModel } from '../src/node/model.js';
import { resolveImage, type ResolvedImage } from '../src/node/inputs.js';
import { DEFAULT_DPI } from '../src/node/pdf.js';
import { glob } from './glob.js';
import { BatchBar, loadProgressPrinter } from './progress.js';
import { checkGgufArgs, numberFlag as num, parseCommandArgs, UsageError, visionWeightsFlag } from './usage.js';

export const ASK_HELP = `Usage: pixtral-webgpu ask <model> [--image FILE[:pages]]... [options] "question"
       pixtral-webgpu ask <model> --each 'GLOB' [--per-page] [--out FILE [--resume]] [options] "question"

<model>: a folder made by "pixtral-webgpu convert", or its http(s) URL (downloaded once into
$XDG_CACHE_HOME/pixtral-webgpu or ~/.cache/pixtral-webgpu; progress on stderr); or a llama.cpp
text GGUF (path or http(s) URL) with --mmproj.
Images: PNG, JPEG, WebP, GIF (first frame), TIFF, with EXIF orientation; PDFs page by page
(scan.pdf:1-3,5 picks pages; default all).

Options:
  --mmproj FILE          the mmproj GGUF (vision tower) when <model> is a text GGUF
  --image FILE[:pages]   an image or PDF for the question (repeat for several, in order)
  --each GLOB            batch: ask about each matching file ({a,b}, *, ?, ** supported)
  --per-page             batch: one answer per PDF page (default: all pages in one prompt)
  --out FILE             batch: write the JSON lines to FILE instead of stdout
  --resume               batch: skip files (pages) that FILE already answers, append the rest
  --json                 print one JSON object (answer, stats, model, inputs) instead of text
  --max-tokens N         tokens to generate at most (default 256)
  --temperature T        0 = greedy (default 0)
  --seed N               sampling seed (same seed, same answer)
  --longest-edge N       downscale images to at most N pixels per side (fewer image tokens)
  --context N            KV-cache length to allocate (default: the model's, capped by the adapter)
  --vision-weights W     host: vision layers in host memory, uploaded per image (less GPU memory); gpu (default)
  --dpi N                PDF render resolution (default ${DEFAULT_DPI})
  --adapter A            WebGPU adapter: software, an index, or part of its name
                         (default: $PIXTRAL_WEBGPU_ADAPTER, else the first)
  --quiet                no progress on stderr
  -h, --help             this help
`;

export interface AskArgs {
  model: string;
  /** The mmproj GGUF: `model` is then a text GGUF. */
  mmproj?: string;
  question: string;
  images: string[];
  each?: string;
  perPage: boolean;
  out?: string;
  resume: boolean;
  json: boolean;
  chat: ChatOptions;
  context?: number;
  visionWeights?: 'gpu' | 'host';
  dpi?: number;
  adapter?: string;
  quiet: boolean;
}

const int = (n: number) => Number.isInteger(n);

/** Parses `ask`'s arguments (after the word "ask"); null for --help. Throws UsageError. */
export function parseAskArgs(argv: string[]): AskArgs | null {
  const { values: v, positionals: pos } = parseCommandArgs(argv, {
    mmproj: { type: 'string' },
    image: { type: 'string', multiple: true },
    each: { type: 'string' },
    'per-page': { type: 'boolean' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    json: { type: 'boolean' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
    seed: { type: 'string' },
    'longest-edge': { type: 'string' },
    context: { type: 'string' },
    'vision-weights': { type: 'string' },
    dpi: { type: 'string' },
    adapter: { type: 'string' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return null;
  if (pos.length < 2) throw new UsageError('ask needs <model> and a question');
  const question = pos.slice(1).join(' ').trim();
  if (!question) throw new UsageError('the question is empty');
  const images = v.image ?? [];
  if (v.each !== undefined && images.length) throw new UsageError('--each and --image do not go together');
  if (v.each === undefined) {
    for (const [flag, on] of [['--per-page', v['per-page']], ['--out', v.out !== undefined], ['--resume', v.resume]] as const) {
      if (on) throw new UsageError(`${flag} only applies to a batch (--each)`);
    }
  } else if (v.json) throw new UsageError('--json is for one question; a batch (--each) always writes JSON lines');
  if (v.resume && v.out === undefined) throw new UsageError('--resume needs --out (the file it continues)');
  checkGgufArgs(pos[0]!, v.mmproj);
  return {
    model: pos[0]!,
    ...(v.mmproj !== undefined ? { mmproj: v.mmproj } : {}),
    question,
    images,
    each: v.each,
    perPage: v['per-page'] ?? false,
    out: v.out,
    resume: v.resume ?? false,
    json: v.json ?? false,
    chat: {
      maxTokens: num('--max-tokens', v['max-tokens'], (n) => int(n) && n >= 1, 'a positive integer'),
      temperature: num('--temperature', v.temperature, (n) => n >= 0, 'a number >= 0') ?? 0,
      seed: num('--seed', v.seed, (n) => int(n) && n >= 0, 'a non-negative integer'),
      longestEdge: num('--longest-edge', v['longest-edge'], (n) => int(n) && n >= 1, 'a positive integer'),
    },
    context: num('--context', v.context, (n) => int(n) && n >= 1, 'a positive integer'),
    dpi: num('--dpi', v.dpi, (n) => n > 0 && n <= 1200, 'a number in (0, 1200]'),
    adapter: v.adapter,
    visionWeights: visionWeightsFlag(v['vision-weights']),
    quiet: v.quiet ?? false,
  };
}

function errorJson(e: unknown): { code: string; name: string; message: string } {
  const name = e instanceof Error ? e.name : 'Error';
  const code = e instanceof PixtralError ? e.code : 'ERROR';
  return { code, name, message: e instanceof Error ? e.message : String(e) };
}

async function load(a: AskArgs): Promise<NodePixtralModel> {
  const progress = a.quiet ? null : loadProgressPrinter();
  try {
    return await loadPixtral({ url: a.model, mmproj: a.mmproj, maxContext: a.context, visionWeights: a.visionWeights, adapter: a.adapter, pdfDpi: a.dpi, onProgress: progress?.onProgress });
  } finally {
    progress?.end();
  }
}

function userTurn(images: ResolvedImage[], question: string) {
  return [{ role: 'user' as const, content: [...images.map((r) => ({ type: 'image' as const, image: r.image })), { type: 'text' as const, text: question }] }];
}

/** One question: the answer streamed to stdout, or one JSON object. */
async function askOnce(a: AskArgs, signal: AbortSignal): Promise<number> {
  // Inputs first: a missing file fails before the model is loaded.
  const inputs: ResolvedImage[] = [];
  for (const img of a.images) inputs.push(...(await resolveImage(img, { dpi: a.dpi })));
  const model = await load(a);
  try {
    const stream = model.chat(userTurn(inputs, a.question), { ...a.chat, signal });
    let answer = '';
    for await (const d of stream) {
      answer += d;
      if (!a.json) process.stdout.write(d);
    }
    const stats = await stream.stats;
    if (a.json) {
      const i = model.info;
      const out = {
        answer,
        stats,
        model: { url: a.model, ...(a.mmproj !== undefined ? { mmproj: a.mmproj } : {}), name: i.name, modelType: i.modelType, dtype: i.dtype, adapter: i.adapter.description || i.adapter.vendor },
        inputs: inputs.map((r) => ({ file: r.source, page: r.page, width: r.image.width, height: r.image.height })),
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else process.stdout.write('\n');
    return 0;
  } finally {
    await model.dispose();
  }
}

/** Keys `file#page` of the lines of a previous `--out` that hold an answer. */
async function answeredIn(path: string): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw e;
  }
  const done = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as { file?: string; page?: number | null; answer?: unknown };
      if (typeof r.file === 'string' && typeof r.answer === 'string') done.add(`${r.file}#${r.page ?? ''}`);
    } catch {
      /* a line cut by an interrupted run: that file is asked again */
    }
  }
  return done;
}

interface BatchLine {
  file: string;
  page: number | null;
  answer?: string;
  stats?: GenerationStats;
  error?: ReturnType<typeof errorJson>;
}

/** The batch: one JSON line per file (or PDF page). */
async function askEach(a: AskArgs, signal: AbortSignal): Promise<number> {
  const files = await glob(a.each!);
  if (!files.length) {
    process.stderr.write(`pixtral-webgpu: no file matches ${a.each}\n`);
    return 1;
  }
  const done = a.resume ? await answeredIn(a.out!) : new Set<string>();
  const sink = a.out ? createWriteStream(a.out, { flags: a.resume ? 'a' : 'w' }) : process.stdout;
  const write = (l: BatchLine) => new Promise<void>((res, rej) => sink.write(`${JSON.stringify(l)}\n`, (e) => (e ? rej(e) : res())));
  const todo = files.filter((f) => !done.has(`${f}#`));
  let ok = 0;
  let failed = 0;
  const skipped = files.length - todo.length;
  const model = todo.length ? await load(a) : null;
  const bar = new BatchBar(todo.length, !a.quiet && !!process.stderr.isTTY);
  try {
    for (const [n, file] of todo.entries()) {
      if (signal.aborted) break;
      let fileOk = false;
      try {
        const images = await resolveImage(file, { dpi: a.dpi });
        const pdf = images.length > 0 && images[0]!.page !== null;
        const jobs = a.perPage && pdf ? images.map((r) => ({ page: r.page, images: [r] })) : [{ page: null, images }];
        for (const job of jobs) {
          if (done.has(`${file}#${job.page ?? ''}`)) {
            fileOk = true;
            continue;
          }
          try {
            const r = await model!.complete(userTurn(job.images, a.question), { ...a.chat, signal });
            await write({ file, page: job.page, answer: r.text, stats: r.stats });
            fileOk = true;
          } catch (e) {
            if (signal.aborted) throw e;
            await write({ file, page: job.page, error: errorJson(e) });
          }
        }
      } catch (e) {
        if (signal.aborted) throw e;
        await write({ file, page: null, error: errorJson(e) });
      }
      if (fileOk) ok++;
      else failed++;
      bar.update(n + 1, ok, failed);
    }
  } finally {
    bar.stop();
    await model?.dispose();
    if (sink !== process.stdout) await new Promise<void>((res) => (sink as ReturnType<typeof createWriteStream>).end(res));
  }
  if (!a.quiet) process.stderr.write(`answered ${ok}, failed ${failed}, skipped ${skipped} (already in ${a.out ?? 'the output'})\n`);
  return failed > 0 && ok === 0 ? 1 : 0;
}

/** Runs `ask`; resolves to the exit code. */
export async function runAsk(argv: string[]): Promise<number> {
  let a: AskArgs | null;
  try {
    a = parseAskArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`pixtral-webgpu ask: ${e.message}\nRun "pixtral-webgpu ask --help" for usage.\n`);
    return 2;
  }
  if (!a) {
    process.stdout.write(ASK_HELP);
    return 0;
  }
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    return await (a.each !== undefined ? askEach(a, ac.signal) : askOnce(a, ac.signal));
  } catch (e) {
    if (ac.signal.aborted) {
      process.stderr.write('\npixtral-webgpu: interrupted\n');
      return 130;
    }
    process.stderr.write(`pixtral-webgpu: error: ${e instanceof Error ? `${e.name}: ${e.message}`.replace(/\s*\n\s*/g, ' ') : String(e)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
