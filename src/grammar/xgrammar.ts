/**
 * Loads xgrammar (`@mlc-ai/web-xgrammar`, the grammar engine WebLLM uses: JSON Schema ->
 * grammar compiled against a vocabulary -> per-step token bitmask) once, on first use, in the
 * browser, a worker or Node. The package is an Emscripten UMD bundle: under ESM it installs
 * itself as `globalThis.xgrammar`, and in Node it reads `require` and `__filename`, which ESM
 * does not define, so those two are provided (only when missing) before it loads.
 */
import type * as XGrammar from '@mlc-ai/web-xgrammar';

export type XGrammarModule = typeof XGrammar;

let loading: Promise<XGrammarModule> | undefined;

export function loadXGrammar(): Promise<XGrammarModule> {
  loading ??= (async () => {
    const g = globalThis as Record<string, unknown>;
    const isNode = typeof process === 'object' && !!process.versions?.node && typeof window === 'undefined';
    if (isNode && (g.require === undefined || g.__filename === undefined)) {
      // A variable specifier keeps bundlers from pulling a Node built-in into the browser build.
      const nodeModule = 'node:module';
      const { createRequire } = (await import(/* @vite-ignore */ nodeModule)) as typeof import('node:module');
      g.require ??= createRequire(import.meta.url);
      g.__filename ??= new URL(import.meta.url).pathname;
    }
    const mod = (await import('@mlc-ai/web-xgrammar')) as Partial<XGrammarModule> & { default?: XGrammarModule };
    const xg = (mod.GrammarCompiler ? mod : (mod.default ?? g.xgrammar)) as XGrammarModule | undefined;
    if (!xg?.GrammarCompiler) throw new Error('@mlc-ai/web-xgrammar did not load');
    return xg;
  })();
  return loading;
}
