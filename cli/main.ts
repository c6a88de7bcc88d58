/**
 * The `pixtral-webgpu` command line: dispatches `ask` (`ask.ts`), `info` (`info.ts`) and the
 * converter, `convert <input-dir> <out-dir> [options]`, whose arguments are parsed here.
 * `convert model.gguf --mmproj mmproj.gguf <out-dir>` converts a llama.cpp GGUF pair instead
 * (`convert-gguf.ts`). Exit codes: 0 success, 1 error (one line on stderr), 2 usage error, 130 interrupted.
 * Progress goes to stderr, results to stdout (`--json` prints them as JSON instead).
 * Run through `bin/pixtral-webgpu.js` (a source checkout or the published dist/cli).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { formatBytes } from '../src/errors.js';
import type { StoredDType } from '../src/weights/manifest.js';
import { convert, DEFAULT_SHARD_MB, STORED_DTYPES, type ConvertProgress } from './convert.js';
import { convertGguf } from './convert-gguf.js';
import type { VisionDType } from './dtype-policy.js';
import type { LayoutKind } from './layouts.js';
import { checkGgufArgs, parseCommandArgs, UsageError } from './usage.js';

/**
 * Commands with their own file, loaded on use (`ask` and `info` bring in the engine and Dawn,
 * which `convert` does not need). Each takes the arguments after its name, resolves to the exit code.
 */
const COMMANDS: Record<string, { usage: string; summary: string; run: () => Promise<(argv: string[]) => Promise<number>> }> = {
  ask: { usage: 'ask <model> --image a.png "question"', summary: 'answer a question about images/PDFs (--each: a batch)', run: async () => (await import('./ask.js')).runAsk },
  'ask-doc': { usage: 'ask-doc <model> <file.pdf> "question"', summary: 'a question about a whole PDF, page by page, with page citations', run: async () => (await import('./ask-doc.js')).runAskDoc },
  info: { usage: 'info <model>', summary: "the model's manifest and the WebGPU adapter", run: async () => (await import('./info.js')).runInfo },
  serve: { usage: 'serve <model> [--port 8080]', summary: 'an OpenAI-compatible HTTP server', run: async () => (await import('./serve.js')).serveMain },
};

export const HELP = `Usage: pixtral-webgpu <command> ...

Commands (pixtral-webgpu <command> --help for each):
  ${'convert <input-dir> <out-dir>'.padEnd(38)} convert a checkpoint (options below)
${Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(38)} ${c.summary}`).join('\n')}

Usage: pixtral-webgpu convert <input-dir> <out-dir> [options]

Converts a Pixtral / mistral3 checkpoint folder (Hugging Face: config.json + model*.safetensors,
or Mistral native: params.json + consolidated*.safetensors) into the pixtral-webgpu format:
manifest.json + shard-NNNNN.bin + the tokenizer file. See docs/format.md.

       pixtral-webgpu convert model.gguf --mmproj mmproj.gguf <out-dir> [options]

Converts a llama.cpp GGUF pair (text model + mmproj; paths or http(s) URLs) into the same
format, the block data kept as stored (no re-quantisation: Q4_K stays Q4_K); --dtype,
--vision-dtype and --layout do not apply.

Options:
  --mmproj FILE             the mmproj GGUF when <input> is a text GGUF
  --dtype q4|f16|f32        stored weights (default q4: decoder linears, lm_head, embedding)
  --vision-dtype f16|f32    vision tower + projector when --dtype is q4/f16 (default f16)
  --shard-mb N              shard size in MiB (default ${DEFAULT_SHARD_MB})
  --layout hf|native        pick a layout when the folder holds both (default hf)
  --force                   replace <out-dir> when it holds a previous conversion
  --json                    print the summary as JSON
  --quiet                   no progress output
  -h, --help                this help
`;

interface Args {
  input: string;
  /** The mmproj GGUF: `input` is then a text GGUF. */
  mmproj?: string;
  output: string;
  dtype: StoredDType;
  visionDtype?: VisionDType;
  shardMb: number;
  layout?: LayoutKind;
  force: boolean;
  json: boolean;
  quiet: boolean;
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got "${v}")`);
  return v as T;
}

/** Parses argv (without node and script); returns null for --help. Throws UsageError. */
export function parseCliArgs(argv: string[]): Args | null {
  const { values: v, positionals: pos } = parseCommandArgs(argv, {
    mmproj: { type: 'string' },
    dtype: { type: 'string' },
    'vision-dtype': { type: 'string' },
    'shard-mb': { type: 'string' },
    layout: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return null;
  const names = ['convert', ...Object.keys(COMMANDS)].map((n) => `"${n}"`).join(', ');
  if (pos[0] !== 'convert') throw new UsageError(pos[0] ? `unknown command "${pos[0]}" (expected one of ${names})` : `missing command (one of ${names})`);
  if (pos.length !== 3) throw new UsageError(`convert needs <input-dir> and <out-dir> (got ${pos.length - 1} argument(s))`);
  const shardMb = v['shard-mb'] === undefined ? DEFAULT_SHARD_MB : Number(v['shard-mb']);
  if (!Number.isFinite(shardMb) || shardMb <= 0) throw new UsageError(`--shard-mb must be a positive number (got "${v['shard-mb']}")`);
  checkGgufArgs(pos[1]!, v.mmproj);
  if (v.mmproj !== undefined) {
    for (const flag of ['dtype', 'vision-dtype', 'layout'] as const) {
      if (v[flag] !== undefined) throw new UsageError(`--${flag} does not apply to a GGUF pair (its blocks are kept as stored)`);
    }
  }
  return {
    input: pos[1]!,
    ...(v.mmproj !== undefined ? { mmproj: v.mmproj } : {}),
    output: pos[2]!,
    dtype: oneOf('--dtype', v.dtype, STORED_DTYPES) ?? 'q4',
    visionDtype: oneOf('--vision-dtype', v['vision-dtype'], ['f16', 'f32'] as const),
    shardMb,
    layout: oneOf('--layout', v.layout, ['hf', 'native'] as const),
    force: v.force ?? false,
    json: v.json ?? false,
    quiet: v.quiet ?? false,
  };
}

function progressPrinter(t0: number): (p: ConvertProgress) => void {
  const tty = process.stderr.isTTY;
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (now - last < (tty ? 200 : 5000) && p.bytesRead < p.totalBytes) return;
    last = now;
    const pct = p.totalBytes ? ((100 * p.bytesRead) / p.totalBytes).toFixed(1) : '100.0';
    const mbs = p.bytesRead / 1e6 / Math.max((now - t0) / 1000, 1e-3);
    const line = `[${p.index + 1}/${p.count}] ${pct}% ${formatBytes(p.bytesRead)}/${formatBytes(p.totalBytes)} ${mbs.toFixed(0)} MB/s ${p.tensor}`;
    if (tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    else process.stderr.write(`${line}\n`);
  };
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const command = argv[0] !== undefined ? COMMANDS[argv[0]] : undefined;
  if (command) return (await command.run())(argv.slice(1));
  let args: Args | null;
  try {
    args = parseCliArgs(argv);
  } catch (e) {
    process.stderr.write(`pixtral-webgpu: ${(e as Error).message}\nRun "pixtral-webgpu --help" for usage.\n`);
    return 2;
  }
  if (!args) {
    process.stdout.write(HELP);
    return 0;
  }
  const ac = new AbortController();
  const onSigint = () => ac.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const t0 = performance.now();
  try {
    const onProgress = args.quiet ? undefined : progressPrinter(t0);
    const r = args.mmproj !== undefined
      ? { ...(await convertGguf({ ...args, mmproj: args.mmproj, signal: ac.signal, onProgress })), layout: 'gguf', warnings: [] }
      : await convert({
          ...args,
          signal: ac.signal,
          onProgress,
          onWarning: (m) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}warning: ${m}\n`),
        });
    if (!args.quiet && process.stderr.isTTY) process.stderr.write('\n');
    const summary = {
      output: r.output,
      layout: r.layout,
      dtype: r.manifest.dtype,
      tensors: r.manifest.tensors.length,
      shards: r.manifest.shards.length,
      bytesRead: r.bytesRead,
      bytesWritten: r.manifest.totalBytes,
      seconds: r.seconds,
      mbPerSecond: r.bytesRead / 1e6 / r.seconds,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      /** CPU time of this process: throughput per CPU-second does not depend on other load. */
      cpuSeconds: (process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime) / 1e6,
      warnings: r.warnings.length,
    };
    if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else {
      process.stdout.write(
        `converted ${summary.tensors} tensors (${r.layout}, ${summary.dtype}) into ${summary.shards} shard${summary.shards === 1 ? '' : 's'}, ` +
          `${formatBytes(summary.bytesWritten)} from ${formatBytes(summary.bytesRead)} in ${summary.seconds.toFixed(1)} s ` +
          `(${summary.mbPerSecond.toFixed(0)} MB/s), peak RSS ${formatBytes(summary.peakRssBytes)} -> ${r.output}\n`,
      );
    }
    return 0;
  } catch (e) {
    if (!args.quiet && process.stderr.isTTY) process.stderr.write('\n');
    if (ac.signal.aborted) {
      process.stderr.write('pixtral-webgpu: interrupted, nothing written\n');
      return 130;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`pixtral-webgpu: error: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`pixtral-webgpu: internal error: ${String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
