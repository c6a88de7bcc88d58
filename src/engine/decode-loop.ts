/**
 * The token loop: prefill a prepared prompt over the KV cache, then decode with the token kept
 * on the GPU: each step (`src/model/decode-steps.ts`, one submit) embeds the token the previous
 * step sampled, runs the model and samples the next, and steps are submitted up to DECODE_RING
 * ahead of the CPU, which reads tokens back asynchronously and hands each to `emit`. Stops on
 * EOS, on `emit` asking to, at the token budget or on abort, checked as tokens arrive; steps
 * computed past the end are discarded. The context budget is checked before any GPU work.
 * A caller that must see token k before step k+1 is encoded (a per-step mask) passes `window: 1`:
 * the same steps, submitted one at a time. A response_format's grammar (`constraint`) runs with
 * each step in two submits: step k+1's forward (embedding token k straight from the GPU, the
 * layers, lm_head) goes right behind step k's sampling, so the GPU computes it while the CPU reads
 * token k, feeds it to the grammar and computes mask k+1; the mask is then written to `allowed`
 * and a second submit applies it to the logits and samples.
 */
import { writeBuffer } from '../gpu/tensor.js';
import { AbortError, ContextLengthError, LimitError, throwIfAborted } from '../errors.js';
import { checkTokenIds } from '../kernels/embedding.js';
import { TOPK_MAX } from '../kernels/sampling.js';
import type { resolveSampling } from '../model/sampler.js';
import { seededUniforms } from '../util/random.js';
import { DECODE_RING, DecodeSteps } from '../model/decode-steps.js';
import type { LoadedModel } from './load.js';
import type { PreparedTurn } from './turn.js';
import type { FinishReason, GenerationStats } from './types.js';
import type { TokenConstraint } from '../grammar/constraint.js';

/** What the loop needs of a loaded model (the engine's `LoadedModel`, or a benchmark's). */
export type DecodeTarget = Pick<LoadedModel, 'gpu' | 'model' | 'sampler' | 'penalty'> & Partial<Pick<LoadedModel, 'allowed'>>;

/** Where a run's JS time went, for the benchmark (`cpuMsPerToken`). */
export interface DecodeProfile {
  /** Milliseconds of JS spent encoding, submitting and handling read-back tokens (not waiting). */
  cpuMs: number;
  /** Decode steps submitted, including any computed past the end and discarded. */
  steps: number;
  /** Dispatches recorded by the decode steps (the runtime's count). */
  dispatches: number;
}

export interface DecodeRequest {
  turn: PreparedTurn;
  sampling: ReturnType<typeof resolveSampling>;
  maxTokens: number;
  signal?: AbortSignal;
  returnLogits: boolean;
  /** A response_format's grammar: only tokens it allows are sampled; it ends with EOS. Implies `window: 1`. */
  constraint?: Pick<TokenConstraint, 'mask' | 'accept'> | null;
  /** Gets each sampled token that is not EOS; returns true to stop. */
  emit: (token: number) => boolean;
  /**
   * Steps submitted ahead of the tokens the CPU has seen, 1..DECODE_RING (default). 1 is the
   * synchronous mode: step k+1 is encoded only after `emit` saw token k (a grammar computes the
   * mask for k+1 from token k there).
   */
  window?: number;
  /** Benchmarks: EOS is emitted like any token and does not stop the run. */
  ignoreEos?: boolean;
}

/** The decode steps of each model, made on its first turn (ring buffers live as long as the model's device). */
const stepsByModel = new WeakMap<DecodeTarget['model'], DecodeSteps>();
function stepsFor(l: DecodeTarget): DecodeSteps {
  let s = stepsByModel.get(l.model);
  if (!s) {
    s = new DecodeSteps(l.gpu, l.model, l.sampler);
    stepsByModel.set(l.model, s);
  }
  return s;
}

export async function decodeLoop(
  l: DecodeTarget,
  r: DecodeRequest,
): Promise<{ stats: Omit<GenerationStats, 'imagesPreprocessed'>; logits?: Float32Array; profile: DecodeProfile }> {
  const { model } = l;
  const { ids, images } = r.turn;
  const { sampling, maxTokens, signal } = r;
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new LimitError(`maxTokens must be a non-negative integer (got ${maxTokens})`);
  checkTokenIds(ids, model.config.text.vocabSize);
  const imageTokens = images.reduce((a, im) => a + im.rows * (im.cols + 1), 0);
  if (ids.length + 1 > model.limits.maxContext) {
    throw new ContextLengthError(ids.length + 1, model.limits.maxContext, `${ids.length} prompt tokens (${imageTokens} for images) and at least one to generate`);
  }
  const budget = Math.min(maxTokens, model.limits.maxContext - ids.length);
  throwIfAborted(signal);
  const pre = await model.prefill({ ids, images }, { returnLogits: r.returnLogits, signal });
  const dispatches0 = l.gpu.ledger.dispatches;
  const S = ids.length;
  const penalised = sampling.repetitionPenalty !== 1;
  // The prompt's ids start the penalty history; each step appends its token on the GPU.
  if (penalised) writeBuffer(l.gpu, l.penalty.buffer, 0, Uint32Array.from(ids));
  const steps = stepsFor(l);
  const constraint = r.constraint ?? null;
  if (constraint && !l.allowed) throw new LimitError('a response_format needs the model\'s allowed-token buffer');
  const window = constraint ? 1 : (r.window ?? DECODE_RING);
  if (!Number.isInteger(window) || window < 1 || window > DECODE_RING) throw new LimitError(`window must be an integer in 1..${DECODE_RING} (got ${window})`);
  const uniform = seededUniforms(sampling.seed);
  const pending: Promise<number>[] = [];
  const tokens: number[] = [];
  let finish: FinishReason = 'length';
  let stopped = false;
  let cpuMs = 0;
  let grammarMs = 0;
  const t0 = performance.now();
  // Step k samples token k; step k >= 1 first feeds token k-1 at position S + k - 1. Steps are
  // submitted up to DECODE_RING ahead of the tokens the CPU has seen; the ones past the end are
  // discarded (their KV rows lie past the cache's keys and get overwritten later).
  const submit = () => {
    const k = pending.length;
    // topK 0 ("off") keeps the TOPK_MAX most likely tokens: the GPU sampler's candidate bound.
    const gpuSampling = { ...sampling, temperature: sampling.greedy ? 0 : sampling.temperature, topK: sampling.topK || TOPK_MAX, u: uniform() };
    const penalty = penalised ? { ids: l.penalty, count: S + k } : undefined;
    const mask = constraint ? l.allowed : undefined;
    // With a grammar, step k's forward (k >= 1) was submitted already, behind step k-1.
    const feedPos = k && !constraint ? S + k - 1 : null;
    pending.push(steps.submit({ feedPos, sampling: gpuSampling, penalty, historyAt: penalised ? S + k : undefined, mask }));
    // Step k+1's forward feeds token k from the GPU; if token k ends the run it is discarded.
    if (constraint && k + 1 < budget) steps.forward(S + k);
  };
  try {
    for (let seen = 0; ; seen++) {
      const ta = performance.now();
      while (!stopped && pending.length < budget && pending.length - seen < window) {
        if (signal?.aborted) {
          finish = 'abort';
          stopped = true;
          break;
        }
        if (constraint) {
          // The mask for step k follows token k-1, seen just before (window 1), while the GPU
          // runs step k's forward.
          const tm = performance.now();
          writeBuffer(l.gpu, l.allowed!.buffer, 0, await constraint.mask());
          grammarMs += performance.now() - tm;
        }
        submit();
      }
      cpuMs += performance.now() - ta;
      if (seen === pending.length) break;
      const token = await pending[seen]!;
      if (stopped) continue; // draining steps computed past the end
      const tb = performance.now();
      if (constraint) constraint.accept(token);
      if (token === model.config.tokens.eos && !r.ignoreEos) {
        finish = 'eos';
        stopped = true;
      } else {
        tokens.push(token);
        if (r.emit(token)) {
          finish = 'stop';
          stopped = true;
        } else if (signal?.aborted) {
          finish = 'abort';
          stopped = true;
        }
      }
      cpuMs += performance.now() - tb;
    }
  } finally {
    // Every step in flight must finish before its ring slot is used again.
    await Promise.allSettled(pending);
  }
  // The cache keeps the tokens that were fed and read on: not the last one of a stop or length
  // finish (nothing read its step), every one before an EOS or an abort.
  const fed = finish === 'stop' || finish === 'length' ? tokens.length - 1 : Math.min(tokens.length, pending.length - 1);
  model.cache.keys.push(...tokens.slice(0, Math.max(0, fed)));
  const generated = tokens.length;
  const profile = { cpuMs, steps: pending.length, dispatches: l.gpu.ledger.dispatches - dispatches0 };
  const decodeMs = performance.now() - t0;
  if (finish === 'abort' && generated === 0 && signal?.aborted) {
    // Nothing was produced: surface the abort as an error, like fetch does.
    throw new AbortError();
  }
  return {
    logits: pre.logits,
    profile,
    stats: {
      promptTokens: ids.length,
      imageTokens,
      reusedTokens: pre.reused,
      imagesEncoded: pre.imagesEncoded,
      generatedTokens: generated,
      imageEncodeMs: pre.imageEncodeMs,
      prefillMs: pre.prefillMs,
      prefillTokensPerSecond: pre.ran / Math.max(pre.prefillMs / 1000, 1e-9),
      decodeMs,
      decodeTokensPerSecond: generated / Math.max(decodeMs / 1000, 1e-9),
      finishReason: finish,
      grammarMs,
    },
  };
}
