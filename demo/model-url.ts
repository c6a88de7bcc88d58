/**
 * The `?model=<url>` parameter of the demo page: which model URLs a link may preselect. Only
 * `https:` URLs, and `http:` on this machine (localhost, 127.0.0.1, [::1]) for development: a
 * link must not make the page fetch gigabytes over plain HTTP from anywhere. Relative URLs are
 * resolved against the page first. A converted model is a folder (its URL gets a trailing `/`);
 * a GGUF pair (`?model=<text.gguf>&mmproj=<mmproj.gguf>`) names two files (`{ file: true }`).
 */

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export type ModelUrlCheck = { ok: true; url: string; host: string } | { ok: false; reason: string };

export function checkModelUrl(raw: string, page: string, opts: { file?: boolean } = {}): ModelUrlCheck {
  let u: URL;
  try {
    u = new URL(raw.trim(), page);
  } catch {
    return { ok: false, reason: `"${raw}" is not a URL` };
  }
  const local = LOCAL_HOSTS.has(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && local)) {
    return { ok: false, reason: `${u.protocol}//${u.host} is not accepted: model URLs must use https: (http: only on localhost)` };
  }
  if (!opts.file && !u.pathname.endsWith('/')) u.pathname += '/';
  return { ok: true, url: u.href, host: u.host };
}
