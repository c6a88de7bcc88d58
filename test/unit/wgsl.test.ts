import { describe, expect, it } from 'vitest';
import { preprocess } from '../../src/gpu/wgsl.js';

/** Non-empty output lines, trimmed (inactive lines become empty to keep line numbers). */
const kept = (src: string, defines: Record<string, boolean> = {}) =>
  preprocess(src, defines)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

describe('wgsl preprocessor', () => {
  it('#if / #elif / #else / #endif pick exactly one branch', () => {
    const src = ['#if A', 'a', '#elif B', 'b', '#elif C', 'c', '#else', 'none', '#endif', 'tail'].join('\n');
    expect(kept(src, { A: true, B: true, C: true })).toEqual(['a', 'tail']);
    expect(kept(src, { B: true, C: true })).toEqual(['b', 'tail']);
    expect(kept(src, { C: true })).toEqual(['c', 'tail']);
    expect(kept(src)).toEqual(['none', 'tail']);
  });

  it('nesting: an inner branch is active only inside an active outer one', () => {
    const src = ['#if A', '#if B', 'ab', '#else', 'a!b', '#endif', '#else', '#if B', '!ab', '#elif C', '!a!bc', '#endif', '#endif'].join('\n');
    expect(kept(src, { A: true, B: true })).toEqual(['ab']);
    expect(kept(src, { A: true })).toEqual(['a!b']);
    expect(kept(src, { B: true })).toEqual(['!ab']);
    expect(kept(src, { C: true })).toEqual(['!a!bc']);
    expect(kept(src, { A: true, C: true })).toEqual(['a!b']);
    // #elif/#else inside an inactive outer branch stay inactive.
    const dead = ['#if A', '#if B', 'x', '#elif !B', 'y', '#else', 'z', '#endif', '#endif', 'end'].join('\n');
    expect(kept(dead, {})).toEqual(['end']);
  });

  it('conditions: !X, A && B, A || B (&& binds tighter), undefined names are false', () => {
    const one = (cond: string, d: Record<string, boolean>) => kept(`#if ${cond}\nyes\n#else\nno\n#endif`, d)[0];
    expect(one('!X', {})).toBe('yes');
    expect(one('!X', { X: true })).toBe('no');
    expect(one('A && B', { A: true })).toBe('no');
    expect(one('A && B', { A: true, B: true })).toBe('yes');
    expect(one('A && !B', { A: true })).toBe('yes');
    expect(one('A || B', { B: true })).toBe('yes');
    expect(one('A || B', {})).toBe('no');
    expect(one('A || B && C', { A: true })).toBe('yes');
    expect(one('A || B && C', { B: true })).toBe('no');
    expect(one('A && B || C', { C: true })).toBe('yes');
    expect(one('UNDEFINED_NAME', { A: true })).toBe('no');
    expect(one('  ! F16 ', {})).toBe('yes');
  });

  it('keeps line numbers: output has as many lines as the source, inactive ones blank', () => {
    const src = ['// header', '#if F16', 'alias act = f16;', '#else', 'alias act = f32;', '#endif', 'fn main() {}'].join('\n');
    for (const F16 of [false, true]) {
      const out = preprocess(src, { F16 }).split('\n');
      expect(out.length).toBe(7);
      expect(out[6]).toBe('fn main() {}');
      expect(out[F16 ? 2 : 4]).toBe(F16 ? 'alias act = f16;' : 'alias act = f32;');
      expect(out[F16 ? 4 : 2]).toBe('');
    }
  });

  it('adds `enable f16;` first exactly when F16 is set', () => {
    const src = 'fn main() {}';
    expect(preprocess(src, { F16: true }).startsWith('enable f16;')).toBe(true);
    expect(preprocess(src, { F16: false })).not.toMatch(/enable f16/);
    expect(preprocess(src, {})).not.toMatch(/enable f16/);
  });

  it('errors: unterminated #if, stray #elif/#else/#endif, unknown directive, bad condition', () => {
    expect(() => preprocess('#if A\nx', {}, 'k')).toThrow(/k\.wgsl: unterminated #if/);
    expect(() => preprocess('#if A\n#if B\n#endif', {}, 'k')).toThrow(/unterminated/);
    expect(() => preprocess('x\n#endif', {}, 'k')).toThrow(/k\.wgsl:2: #endif without #if/);
    expect(() => preprocess('#else', {}, 'k')).toThrow(/#else without #if/);
    expect(() => preprocess('#elif A', {}, 'k')).toThrow(/#elif without #if/);
    expect(() => preprocess('#ifdef A\n#endif', {}, 'k')).toThrow(/unknown directive/);
    expect(() => preprocess('#define A 1', {}, 'k')).toThrow(/unknown directive/);
    expect(() => preprocess('#if a-b\n#endif', {}, 'k')).toThrow(/bad condition/);
    expect(() => preprocess('#if (A)\n#endif', {}, 'k')).toThrow(/bad condition/);
    // Also inside an inactive branch: directives are always parsed.
    expect(() => preprocess('#if A\n#bogus\n#endif', {}, 'k')).toThrow(/unknown directive/);
  });

  it('the real shaders preprocess cleanly for every define they use', async () => {
    const { readFileSync, readdirSync } = await import('node:fs');
    const dir = new URL('../../shaders/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.wgsl'))) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      const names = [...new Set([...src.matchAll(/^\s*#(?:el)?if\s+(.*)$/gm)].flatMap((m) => m[1]!.match(/[A-Z_][A-Z0-9_]*/g) ?? []))];
      for (let mask = 0; mask < 1 << Math.min(names.length, 4); mask++) {
        const d = Object.fromEntries(names.map((n, i) => [n, !!(mask & (1 << i))]));
        const out = preprocess(src, d, f);
        expect(out.split('\n').length, f).toBe(src.split('\n').length);
        expect(out, f).not.toMatch(/^\s*#/m);
      }
    }
  });
});
