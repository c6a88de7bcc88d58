/**
 * Registers the service worker (sw.ts, built as `sw.js`) in the built site, so the app shell is
 * available offline after the first visit, and reports the state in the page. The dev server
 * (`npm run demo`) does not use it: Vite serves modules unbundled there.
 */

export type OfflineState = 'unsupported' | 'dev' | 'installing' | 'ready' | 'failed';

export async function registerServiceWorker(report: (state: OfflineState, detail?: string) => void): Promise<OfflineState> {
  if (!('serviceWorker' in navigator)) {
    report('unsupported');
    return 'unsupported';
  }
  if (import.meta.env.DEV) {
    report('dev');
    return 'dev';
  }
  try {
    report('installing');
    await navigator.serviceWorker.register('./sw.js', { scope: './' });
    await navigator.serviceWorker.ready;
    report('ready');
    return 'ready';
  } catch (e) {
    report('failed', e instanceof Error ? e.message : String(e));
    return 'failed';
  }
}
