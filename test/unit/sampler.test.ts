import { describe, expect, it } from 'vitest';
import { resolveSampling } from '../../src/model/sampler.js';
import { seededUniforms as seededUniform } from '../../src/util/random.js';
import { StopStringFilter } from '../../src/model/stop.js';
import { LimitError } from '../../src/errors.js';

describe('sampling options', () => {
  it('defaults to greedy and validates ranges', () => {
    expect(resolveSampling({ seed: 1 })).toMatchObject({ temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, greedy: true });
    expect(resolveSampling({ temperature: 0.7, topK: 1, seed: 1 }).greedy).toBe(true);
    expect(resolveSampling({ temperature: 0.7, seed: 1 }).greedy).toBe(false);
    expect(() => resolveSampling({ temperature: -1 })).toThrow(LimitError);
    expect(() => resolveSampling({ topP: 0 })).toThrow(LimitError);
    expect(() => resolveSampling({ topK: 1000 })).toThrow(LimitError);
    expect(() => resolveSampling({ repetitionPenalty: 0 })).toThrow(LimitError);
  });

  it('gives the same uniform stream for the same seed and a different one otherwise', () => {
    const a = seededUniform(42);
    const b = seededUniform(42);
    const c = seededUniform(43);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c())).not.toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });
});

describe('stop strings', () => {
  const run = (chunks: string[], stops: string[]) => {
    const f = new StopStringFilter(stops);
    let out = '';
    for (const c of chunks) {
      out += f.push(c);
      if (f.done) break;
    }
    return { out: out + f.flush(), done: f.done };
  };

  it('cuts before a stop string split across chunks and never emits part of it', () => {
    const f = new StopStringFilter(['END']);
    expect(f.push('abc E')).toBe('abc ');
    expect(f.push('N')).toBe('');
    expect(f.push('D tail')).toBe('');
    expect(f.done).toBe(true);
  });

  it('releases held text when the stop string does not complete', () => {
    expect(run(['ab', 'E', 'Nx', 'y'], ['END'])).toEqual({ out: 'abENxy', done: false });
    expect(run(['hello wor', 'ld'], ['\n\n'])).toEqual({ out: 'hello world', done: false });
  });

  it('picks the earliest of several stop strings', () => {
    expect(run(['one. two! three'], ['!', '.'])).toEqual({ out: 'one', done: true });
  });
});
