/**
 * `npm run bench -- [--out FILE.json] [--only a,b] [--models m,n] [--timeout SECONDS]`: serves the benchmark
 * page (bench/page/) with Vite, opens it in Debian's headless Chromium (the test flags of
 * test/chromium.ts), runs the sections there (`--models`: only these models in the `e2e` section), writes the JSON result to --out and prints a table.
 * `--timeout`: seconds without a progress line from the page before the run is called hung
 * (default 1800: the longest silent stretch is one timed Pixtral-12B turn on a software adapter,
 * ~8 minutes on a slow 2-core machine); a slow run that keeps reporting is never cut off.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createServer } from 'vite';
import { chromium } from 'playwright';
import { chromiumArgs, chromiumPath } from '../test/chromium.js';
import { fixtureServer, repoRoot } from '../test/fixture-server.js';

interface Args {
  out?: string;
  only?: string;
  models?: string;
  /** Seconds without a progress line before the run is called hung. */
  timeout: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { timeout: 1800 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [key, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i] ?? '';
    if (key === '--out') args.out = value();
    else if (key === '--only') args.only = value();
    else if (key === '--models') args.models = value();
    else if (key === '--timeout') {
      args.timeout = Number(value());
      if (!(args.timeout > 0)) throw new Error(`--timeout wants a positive number of seconds (got ${args.timeout})`);
    }
    else if (key === '--help' || key === '-h') {
      console.log('usage: npm run bench -- [--out FILE.json] [--only section,section] [--models tiny-screens,pixtral-12b] [--timeout SECONDS]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

type Row = Record<string, unknown>;

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v >= 100 ? v.toFixed(1) : v.toPrecision(3);
  if (v && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Prints an array of flat objects as an aligned table. */
function table(title: string, rows: Row[]): void {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => fmt(r[c])));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  console.log(`\n${title}`);
  console.log(cols.map((c, i) => c.padEnd(width[i]!)).join('  '));
  for (const r of cells) console.log(r.map((c, i) => c.padEnd(width[i]!)).join('  '));
}

function printResult(result: Row): void {
  const a = result.adapter as Row | undefined;
  if (a) console.log(`\nadapter ${fmt(a.vendor)}/${fmt(a.architecture)} "${fmt(a.description)}" f16=${a.f16} subgroups=${a.subgroups} timing=${fmt(result.timing)}`);
  if (typeof result.copyGBps === 'number') console.log(`copy: ${result.copyGBps.toFixed(2)} GB/s (read + written)`);
  for (const [k, v] of Object.entries(result)) {
    if (Array.isArray(v) && v.length && typeof v[0] === 'object') table(k, v as Row[]);
  }
  if (result.sectionSeconds) console.log(`\nseconds per section: ${JSON.stringify(result.sectionSeconds)}`);
  if (result.errors) console.log(`\nERRORS: ${JSON.stringify(result.errors, null, 2)}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const server = await createServer({
    root: repoRoot,
    configFile: false,
    plugins: [fixtureServer()],
    logLevel: 'warn',
    // No HMR: an edit elsewhere in the tree must not reload the page mid-benchmark.
    server: { host: '127.0.0.1', port: 5180, strictPort: false, hmr: false },
  });
  await server.listen();
  const base = server.resolvedUrls?.local[0];
  if (!base) throw new Error('vite did not report a URL');
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    // Unquantised timestamp queries.
    args: [...chromiumArgs, '--enable-webgpu-developer-features'],
  });
  const t0 = Date.now();
  try {
    const page = await browser.newPage();
    let progress = () => {};
    const done = new Promise<Row>((resolveDone, reject) => {
      page.on('pageerror', (e) => reject(e));
      page.on('crash', () => reject(new Error('page crashed')));
      void page.exposeFunction('__benchReport', (json: string) => resolveDone(JSON.parse(json) as Row));
      // A hang guard, not a time limit: every progress line restarts it.
      const guard = setTimeout(() => reject(new Error(`benchmark hung: no progress for ${args.timeout} s`)), args.timeout * 1000).unref();
      progress = () => void guard.refresh();
    });
    // Rejected before it is awaited (a hang while the page loads) is still reported below, once.
    done.catch(() => undefined);
    await page.exposeFunction('__benchLog', (line: string) => {
      progress();
      console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}`);
    });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') console.log(`[page ${m.type()}] ${m.text()}`);
    });
    const params = new URLSearchParams();
    if (args.only) params.set('only', args.only);
    if (args.models) params.set('models', args.models);
    const query = params.toString() ? `?${params.toString()}` : '';
    await page.goto(new URL(`bench/page/index.html${query}`, base).href);
    const result = await done;
    if (result.fatal) throw new Error(`benchmark failed: ${String(result.fatal)}`);
    result.wallSeconds = (Date.now() - t0) / 1000;
    if (args.out) {
      const out = resolve(process.cwd(), args.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`wrote ${out}`);
    }
    printResult(result);
    if (result.errors) process.exitCode = 1;
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
