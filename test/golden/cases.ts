/** The golden cases of a fixture model: inputs, expected outputs, case.json, and the shared decoder check. */
import { expect } from 'vitest';
import { fetchJson, fetchSafetensors, type LoadedTensor } from '../helpers/safetensors.js';
import type { PrefillInput, VisionLanguageModel } from '../../src/model/vlm.js';
import type { Tol } from '../helpers/close.js';

export interface CaseJson {
  name: string;
  input_ids: number[];
  seq_len: number;
  images?: { pixel_values: string; pixel_hw: [number, number]; grid_rows_cols: [number, number] }[];
  greedy_tokens: number[];
  tolerances: Record<string, { atol: number; rtol: number; atol_strict: number; rtol_strict: number }>;
}

export interface GoldenCase {
  json: CaseJson;
  inputs: Record<string, LoadedTensor>;
  expected: Record<string, LoadedTensor>;
}

export async function loadCase(fixture: string, name: string): Promise<GoldenCase> {
  const base = `/shared/fixtures/${fixture}/cases/${name}`;
  const [json, inputs, expected] = await Promise.all([
    fetchJson<CaseJson>(`${base}/case.json`),
    fetchSafetensors(`${base}/inputs.safetensors`),
    fetchSafetensors(`${base}/expected.safetensors`),
  ]);
  return { json, inputs, expected };
}

/** The prompt of a case with its images located in the ids (each image starts at its first [IMG]). */
export function casePrompt(c: GoldenCase, imgTokenId: number, patch: number): PrefillInput {
  const ids = c.json.input_ids;
  const images: PrefillInput['images'] = [];
  let from = 0;
  for (const [i, im] of (c.json.images ?? []).entries()) {
    const start = ids.indexOf(imgTokenId, from);
    const [rows, cols] = im.grid_rows_cols;
    const px = c.inputs[im.pixel_values]!;
    const [, H, W] = px.shape as [number, number, number];
    if (H !== rows * patch || W !== cols * patch) throw new Error(`case ${c.json.name} image ${i}: ${H}x${W} vs grid ${rows}x${cols}`);
    images.push({ start, rows, cols, image: { pixels: px.data as Float32Array, height: H, width: W }, key: `${c.json.name}/${i}` });
    from = start + rows * (cols + 1);
  }
  return { ids, images };
}

export function tol(c: GoldenCase, name: string, strict = false): Tol {
  const t = c.json.tolerances[name]!;
  return strict ? { atol: t.atol_strict, rtol: t.rtol_strict } : { atol: t.atol, rtol: t.rtol };
}

/** argmax with the lowest index on ties, as the fixtures define greedy decoding. */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/**
 * Prefill with the logits of every position, then exactly 8 greedy steps (lowest index on ties,
 * no EOS stop) as the fixtures define them; `report` compares each tensor with the golden.
 */
export async function checkDecoder(
  m: VisionLanguageModel,
  c: GoldenCase,
  prompt: PrefillInput,
  report: (c: GoldenCase, name: string, got: Float32Array) => unknown,
): Promise<void> {
  const r = await m.prefill(prompt, { returnLogits: true });
  expect(r.ran).toBe(c.json.seq_len);
  report(c, 'logits', r.logits!);
  let logits = await m.readLogits();
  report(c, 'last_logits', logits);
  const V = m.config.text.vocabSize;
  const greedy: number[] = [];
  const all = new Float32Array(8 * V);
  for (let k = 0; k < 8; k++) {
    all.set(logits, k * V);
    const tok = argmax(logits);
    greedy.push(tok);
    if (k < 7) {
      m.append(tok);
      logits = await m.readLogits();
    }
  }
  report(c, 'greedy_logits', all);
  expect(greedy).toEqual(c.json.greedy_tokens);
}
