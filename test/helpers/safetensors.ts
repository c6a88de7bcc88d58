/**
 * Reads a whole (small) safetensors file fetched in the browser into typed arrays, for golden
 * fixtures: 8-byte little-endian header length, JSON header, raw little-endian data.
 */
import { fixtureUrl } from './fixture-url.js';

export type Loaded = Float32Array | Int32Array | Uint8Array;

export interface LoadedTensor {
  dtype: string;
  shape: number[];
  data: Loaded;
}

export function parseSafetensors(buf: ArrayBuffer): Record<string, LoadedTensor> {
  const view = new DataView(buf);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + n;
  const out: Record<string, LoadedTensor> = {};
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [s, e] = h.data_offsets;
    const bytes = buf.slice(base + s, base + e);
    const data =
      h.dtype === 'F32' ? new Float32Array(bytes) : h.dtype === 'I32' ? new Int32Array(bytes) : h.dtype === 'U8' ? new Uint8Array(bytes) : null;
    if (!data) throw new Error(`${name}: dtype ${h.dtype} not handled by the test reader`);
    out[name] = { dtype: h.dtype, shape: h.shape, data };
  }
  return out;
}

export async function fetchSafetensors(url: string): Promise<Record<string, LoadedTensor>> {
  const r = await fetch(fixtureUrl(url));
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return parseSafetensors(await r.arrayBuffer());
}

export async function fetchJson<T = unknown>(url: string): Promise<T> {
  const r = await fetch(fixtureUrl(url));
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}
