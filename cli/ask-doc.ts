/**
 * `pixtral-webgpu ask-doc <model> report.pdf "question"`: a question about a whole document,
 * page by page (`askDocument`). Prints the answer and its page citations; `--per-page` prints one
 * JSON line per page (`page`, `answer`, and `json` with `--schema`, `error` for a failed page);
 * `--json` prints the whole result. Progress per page on stderr (`--quiet`: none).
 * Exit codes: 0 success, 1 error, 2 usage error, 130 interrupted.
 */
import { readFile } from 'node:fs/promises';
import { askDocument, type PageProgress, type PerPageResult, type SynthesisResult } from '../src/documents/node.js';
import { selectPages } from '../src/documents/pages.js';
import { loadPixtral, type NodePixtralModel } from '../src/node/model.js';
import { pdfPageCount } from '../src/node/pdf.js';
import type { ResponseFormat } from '../src/grammar/response-format.js';
import { loadProgressPrinter } from './progress.js';
import { checkGgufArgs, parseCommandArgs, positiveIntFlag as positiveInt, UsageError } from './usage.js';

export const ASK_DOC_HELP = `Usage: pixtral-webgpu ask-doc <model> <file.pdf> [options] "question"

<model>: a folder made by "pixtral-webgpu convert" (or its URL), or a text GGUF with --mmproj.

Asks a question about a whole PDF one page at a time, so the KV cache holds one page plus notes
whatever the page count. Default: map (each page: relevant? quote, notes) then reduce (one answer
citing pages). --per-page: the question asked of every page, one JSON line per page.

Options:
  --mmproj FILE        the mmproj GGUF (vision tower) when <model> is a text GGUF
  --pages RANGE        pages to read, e.g. 1-20 or 1-3,7 (default all)
  --page-tokens N      image tokens per page at most (default 1024)
  --per-page           one JSON line per page ({"page", "answer"}), no synthesis
  --schema FILE        --per-page: a JSON Schema; each page's answer is JSON that validates ("json")
  --json               print the whole result as one JSON object
  --max-tokens N       tokens per answer at most (default 256)
  --context N          KV-cache length to allocate (default: the model's, capped by the adapter)
  --adapter A          WebGPU adapter: software, an index, or part of its name
  --quiet              no progress on stderr
  -h, --help           this help
`;

export interface AskDocArgs {
  model: string;
  /** The mmproj GGUF: `model` is then a text GGUF. */
  mmproj?: string;
  file: string;
  question: string;
  pages?: string;
  pageTokens?: number;
  perPage: boolean;
  schema?: string;
  json: boolean;
  maxTokens?: number;
  context?: number;
  adapter?: string;
  quiet: boolean;
}

/** Parses `ask-doc`'s arguments (after its name); null for --help. Throws UsageError. */
export function parseAskDocArgs(argv: string[]): AskDocArgs | null {
  const { values: v, positionals: pos } = parseCommandArgs(argv, {
    mmproj: { type: 'string' },
    pages: { type: 'string' },
    'page-tokens': { type: 'string' },
    'per-page': { type: 'boolean' },
    schema: { type: 'string' },
    json: { type: 'boolean' },
    'max-tokens': { type: 'string' },
    context: { type: 'string' },
    adapter: { type: 'string' },
    quiet: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return null;
  if (pos.length < 3) throw new UsageError('ask-doc needs <model>, <file.pdf> and a question');
  const question = pos.slice(2).join(' ').trim();
  if (!question) throw new UsageError('the question is empty');
  if (v.schema !== undefined && !v['per-page']) throw new UsageError('--schema applies per page only (--per-page)');
  if (v.json && v['per-page']) throw new UsageError('--json and --per-page do not go together (--per-page already prints JSON lines)');
  checkGgufArgs(pos[0]!, v.mmproj);
  return {
    model: pos[0]!,
    ...(v.mmproj !== undefined ? { mmproj: v.mmproj } : {}),
    file: pos[1]!,
    question,
    pages: v.pages,
    pageTokens: positiveInt('--page-tokens', v['page-tokens']),
    perPage: v['per-page'] ?? false,
    schema: v.schema,
    json: v.json ?? false,
    maxTokens: positiveInt('--max-tokens', v['max-tokens']),
    context: positiveInt('--context', v.context),
    adapter: v.adapter,
    quiet: v.quiet ?? false,
  };
}

function progressLine(p: PageProgress): string {
  const what = p.error ? `error: ${p.error}` : p.relevant === undefined ? JSON.stringify(p.found ?? '') : p.relevant ? `found ${JSON.stringify(p.found ?? '')}` : 'not found';
  return `page ${p.page} (${p.index}/${p.total}) ${what} [${(p.elapsedMs / 1000).toFixed(1)} s]\n`;
}

/** The answer, then one line per cited page. */
export function formatSynthesis(r: SynthesisResult): string {
  const cites = r.citations.map((c) => `  page ${c.page}${c.quote ? `: "${c.quote}"` : ''}`);
  return `${r.answer.trim()}\n${cites.length ? `\nPages cited:\n${cites.join('\n')}\n` : '\n(no page was found to hold the answer)\n'}`;
}

export async function runAskDoc(argv: string[]): Promise<number> {
  let a: AskDocArgs | null;
  try {
    a = parseAskDocArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`pixtral-webgpu ask-doc: ${e.message}\nRun "pixtral-webgpu ask-doc --help" for usage.\n`);
    return 2;
  }
  if (!a) {
    process.stdout.write(ASK_DOC_HELP);
    return 0;
  }
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let model: NodePixtralModel | null = null;
  try {
    // Inputs first: a missing file or schema fails before the model is loaded.
    const bytes = new Uint8Array(await readFile(a.file));
    let responseFormat: ResponseFormat | undefined;
    if (a.schema) responseFormat = { type: 'json_schema', json_schema: { name: 'page', schema: JSON.parse(await readFile(a.schema, 'utf8')) as Record<string, unknown>, strict: true } };
    selectPages(a.pages, await pdfPageCount(bytes, a.file), a.file); // a bad range fails before the model loads
    const progress = a.quiet ? null : loadProgressPrinter();
    try {
      model = await loadPixtral({ url: a.model, mmproj: a.mmproj, maxContext: a.context, adapter: a.adapter, onProgress: progress?.onProgress });
    } finally {
      progress?.end();
    }
    const common = {
      pages: a.pages,
      pageTokens: a.pageTokens,
      maxTokens: a.maxTokens,
      signal: ac.signal,
      name: a.file,
      onPage: a.quiet ? undefined : (p: PageProgress) => process.stderr.write(progressLine(p)),
    };
    if (a.perPage) {
      const r: PerPageResult = await askDocument(model, bytes, a.question, { ...common, perPage: true, response_format: responseFormat });
      for (const p of r.pages) process.stdout.write(`${JSON.stringify({ page: p.page, answer: p.answer, ...(p.json !== undefined ? { json: p.json } : {}), ...(p.error ? { error: p.error } : {}) })}\n`);
      return r.pages.every((p) => p.error) ? 1 : 0;
    }
    const r = await askDocument(model, bytes, a.question, common);
    process.stdout.write(a.json ? `${JSON.stringify(r)}\n` : formatSynthesis(r));
    return 0;
  } catch (e) {
    if (ac.signal.aborted) {
      process.stderr.write('\npixtral-webgpu: interrupted\n');
      return 130;
    }
    process.stderr.write(`pixtral-webgpu: error: ${e instanceof Error ? `${e.name}: ${e.message}`.replace(/\s*\n\s*/g, ' ') : String(e)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
    await model?.dispose();
  }
}
