/**
 * `image_url` parts -> image inputs for the engine: `data:` URLs are decoded here (base64 or
 * percent-encoded), http(s) URLs fetched when allowed. The bytes' header must name an image
 * format the decoders know (PNG, JPEG, WebP, GIF, BMP, ...), so garbage is refused with an
 * `ImageError` naming the part before the engine sees it.
 */
import { ImageError, NetworkError, RequestError, throwIfAborted } from '../errors.js';
import { probeImageSize } from '../image/decode.js';

export interface ImageUrlOptions {
  /** Fetch http(s) image URLs (default true in the library; `serve` needs --allow-remote-images). */
  allowRemoteImages?: boolean;
  /** Replaces `fetch` for http(s) images. */
  fetch?: typeof fetch;
  /** Turns the bytes into what the engine's `chat` takes (default: a `Blob` of that type). */
  imageFromBytes?: (bytes: Uint8Array, mimeType: string) => unknown;
  signal?: AbortSignal;
}

function base64ToBytes(b64: string): Uint8Array {
  const clean = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new Error('not valid base64');
  const bin = atob(clean.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** `data:[<mime>][;base64],<data>` -> bytes and mime type. */
export function parseDataUrl(url: string, param: string): { bytes: Uint8Array; mimeType: string } {
  const comma = url.indexOf(',');
  if (!/^data:/i.test(url) || comma < 0) throw new RequestError(param, 'malformed data: URL (expected data:<type>;base64,<data>)');
  const meta = url.slice(5, comma).split(';');
  const mimeType = meta[0] || 'application/octet-stream';
  const data = url.slice(comma + 1);
  try {
    const bytes = meta.slice(1).some((m) => m.toLowerCase() === 'base64') ? base64ToBytes(data) : new TextEncoder().encode(decodeURIComponent(data));
    return { bytes, mimeType };
  } catch (e) {
    throw new RequestError(param, `malformed data: URL: ${(e as Error).message}`);
  }
}

async function fetchImage(url: string, param: string, o: ImageUrlOptions): Promise<{ bytes: Uint8Array; mimeType: string }> {
  if (o.allowRemoteImages === false) throw new RequestError(param, 'http(s) image URLs are not allowed here (send the image as a data: URL)');
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(url, { signal: o.signal });
  } catch (e) {
    throwIfAborted(o.signal);
    throw new NetworkError(`${param}: could not fetch ${url}: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (!res.ok) throw new NetworkError(`${param}: ${url} answered HTTP ${res.status}`, res.status);
  return { bytes: new Uint8Array(await res.arrayBuffer()), mimeType: res.headers.get('content-type') ?? 'application/octet-stream' };
}

/** Resolves one image URL to the engine's image input; names `param` in every error. */
export async function resolveImageUrl(url: string, param: string, o: ImageUrlOptions = {}): Promise<unknown> {
  const { bytes, mimeType } = /^data:/i.test(url) ? parseDataUrl(url, param) : await fetchImage(url, param, o);
  if (!probeImageSize(bytes)) {
    throw new ImageError(`${param}: the bytes (${bytes.length}, type ${mimeType}) are not an image in a known format (PNG, JPEG, WebP, GIF, BMP)`);
  }
  return o.imageFromBytes ? o.imageFromBytes(bytes, mimeType) : new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mimeType });
}
