/**
 * Sampling settings on the host side: validation and defaults. The
 * draw itself happens on the GPU (`src/kernels/sampling.ts`) so a decode step reads back one
 * token id; the host only supplies one uniform number per step from a seeded PRNG (`src/util/random.ts`), which makes
 * "same seed, same output" hold across runs and devices.
 */
import { LimitError } from '../errors.js';
import { TOPK_MAX } from '../kernels/sampling.js';

export interface SamplingOptions {
  /** 0 = greedy (argmax, lowest index on ties). Default 0. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = the GPU sampler's bound, MAX_TOP_K). Default 0. */
  topK?: number;
  /** Nucleus cut over the candidates (1 = off). Default 1. */
  topP?: number;
  /** Hugging Face semantics: logit > 0 ? logit / p : logit * p, for tokens already generated. Default 1. */
  repetitionPenalty?: number;
  /** Seed for the random stream; default: random per call. */
  seed?: number;
}

export interface ResolvedSampling {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  greedy: boolean;
}

/** Upper bound of top-k on the GPU path (candidates kept per step). */
export const MAX_TOP_K = TOPK_MAX;

export function resolveSampling(o: SamplingOptions = {}): ResolvedSampling {
  const temperature = o.temperature ?? 0;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new LimitError(`sampling: ${what}`);
  };
  check(Number.isFinite(temperature) && temperature >= 0, `temperature must be >= 0 (got ${temperature})`);
  check(Number.isInteger(topK) && topK >= 0 && topK <= MAX_TOP_K, `topK must be an integer in 0..${MAX_TOP_K} (got ${topK})`);
  check(topP > 0 && topP <= 1, `topP must be in (0, 1] (got ${topP})`);
  check(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0, `repetitionPenalty must be > 0 (got ${repetitionPenalty})`);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  check(Number.isFinite(seed), `seed must be a number (got ${seed})`);
  return { temperature, topK, topP, repetitionPenalty, seed: seed >>> 0, greedy: temperature === 0 || topK === 1 };
}
