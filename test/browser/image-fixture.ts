/**
 * Test helpers for the image tests: the pixtral-tiny-a `preprocess` case (case.json, expected
 * safetensors, source PNGs) fetched from the fixture server, and error statistics in u8 units.
 */
import { parseSafetensors, type LoadedTensor } from '../helpers/safetensors.js';

export const PREPROCESS_DIR = '/shared/fixtures/pixtral-tiny-a/cases/preprocess';

type Hw = [number, number];
export interface PreprocessTarget {
  longest_edge: number;
  target_hw: Hw;
  grid_rows_cols: Hw;
  num_image_tokens: number;
  expected_resized_u8_key: string;
  expected_pixel_values_key: string | null;
}
export interface PreprocessImageCase {
  png: string;
  source_hw: Hw;
  targets: Record<'le1024' | 'le256', PreprocessTarget>;
}
export interface PreprocessCase {
  images: PreprocessImageCase[];
  mean: [number, number, number];
  std: [number, number, number];
}

export type StTensor = LoadedTensor;

async function fetchOk(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return r;
}

export async function loadSafetensors(url: string): Promise<Map<string, StTensor>> {
  return new Map(Object.entries(parseSafetensors(await (await fetchOk(url)).arrayBuffer())));
}

export async function loadPreprocessCase(): Promise<{ c: PreprocessCase; expected: Map<string, StTensor> }> {
  const c = (await (await fetchOk(`${PREPROCESS_DIR}/case.json`)).json()) as PreprocessCase;
  const expected = await loadSafetensors(`${PREPROCESS_DIR}/expected.safetensors`);
  return { c, expected };
}

export async function fetchBlob(path: string): Promise<Blob> {
  return (await fetchOk(path)).blob();
}

export interface ErrStats {
  /** Mean |a - b|. */
  mean: number;
  /** 99th percentile of |a - b|. */
  p99: number;
  max: number;
  /** Elements that differ at all. */
  differing: number;
}

/** |a - b| statistics over all elements, scaled by `scale` (e.g. 255 * std to get u8 steps). */
export function errStats(a: ArrayLike<number>, b: ArrayLike<number>, scale: (i: number) => number = () => 1): ErrStats {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  const d = new Float64Array(a.length);
  let sum = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]! - b[i]!) * scale(i);
    d[i] = v;
    sum += v;
    if (v !== 0) differing++;
  }
  d.sort();
  return {
    mean: sum / a.length,
    p99: d[Math.min(d.length - 1, Math.floor(0.99 * d.length))]!,
    max: d[d.length - 1] ?? 0,
    differing,
  };
}

/** Packed RGB (HWC, stride 3 or 4) -> CHW u8, the layout of the fixture's `resized_u8`. */
export function hwcToChw(src: ArrayLike<number>, width: number, height: number, stride: 3 | 4): Uint8Array {
  const hw = width * height;
  const out = new Uint8Array(3 * hw);
  for (let i = 0; i < hw; i++) for (let c = 0; c < 3; c++) out[c * hw + i] = src[i * stride + c]!;
  return out;
}

export const fmt = (s: ErrStats): string => `mean ${s.mean.toFixed(3)} p99 ${s.p99.toFixed(2)} max ${s.max.toFixed(2)}`;
