/**
 * Absolute URLs of fixture paths (`/shared/...`, `/scratch/...`): against the page's origin in
 * the browser project (Vite serves them), against the fixture server of test/dawn/global-setup.ts
 * in Node, where there is no page to resolve a relative URL against.
 */
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Origin of the `dawn` project's fixture server, e.g. `http://127.0.0.1:41234`. */
    fixtureOrigin?: string;
  }
}

export function fixtureUrl(path: string): string {
  const base = typeof location !== 'undefined' ? location.href : inject('fixtureOrigin');
  if (!base) throw new Error(`no origin to resolve ${path} against: not in a page and no fixture server provided`);
  return new URL(path, base).href;
}
