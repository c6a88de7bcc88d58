/**
 * Elementwise closeness as the fixtures define it: |a - b| <= atol + rtol * |b|. On failure the
 * message names the worst element, so a log says where and by how much.
 */
import { expect } from 'vitest';

export interface Tol {
  atol: number;
  rtol: number;
}

export interface CloseReport {
  maxAbs: number;
  maxRel: number;
  worst: number;
  failures: number;
}

export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol): CloseReport {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  let failures = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const d = Math.abs(a - b);
    if (!(d <= tol.atol + tol.rtol * Math.abs(b))) failures++;
    const excess = Number.isNaN(d) ? Infinity : d - (tol.atol + tol.rtol * Math.abs(b));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    const rel = d / Math.max(Math.abs(b), 1e-12);
    if (rel > maxRel) maxRel = rel;
  }
  return { maxAbs, maxRel, worst, failures };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, what = 'values'): CloseReport {
  const r = compare(actual, expected, tol);
  if (r.failures > 0) {
    const i = r.worst;
    expect.fail(
      `${what}: ${r.failures}/${actual.length} outside atol=${tol.atol} rtol=${tol.rtol}; max abs err ${r.maxAbs.toExponential(3)}; worst [${i}] got ${actual[i]} want ${expected[i]}`,
    );
  }
  return r;
}
