/**
 * The token loop: prefill a prepared prompt over the KV cache, then per step sample on the GPU,
 * read back one token id, hand it to `emit` and feed it to the next step. Stops on EOS, on
 * `emit` asking to, at the token budget or on abort; the context budget is checked before any
 * GPU work.
 */
import { writeBuffer } from '../gpu/tensor.js';
import { record } from '../gpu/kernel.js';
import { AbortError, ContextLengthError, LimitError, throwIfAborted } from '../errors.js';
import { checkTokenIds } from '../kernels/embedding.js';
import { TOPK_MAX } from '../kernels/sampling.js';
import type { resolveSampling } from '../model/sampler.js';
import { seededUniforms } from '../util/random.js';
import type { LoadedModel } from './load.js';
import type { PreparedTurn } from './turn.js';
import type { FinishReason, GenerationStats } from './types.js';
import { maskLogits } from '../kernels/logit-mask.js';
import type { TokenConstraint } from '../grammar/constraint.js';

export interface DecodeRequest {
  turn: PreparedTurn;
  sampling: ReturnType<typeof resolveSampling>;
  maxTokens: number;
  signal?: AbortSignal;
  returnLogits: boolean;
  /** A response_format's grammar: only tokens it allows are sampled; it ends with EOS. */
  constraint?: TokenConstraint | null;
  /** Gets each sampled token that is not EOS; returns true to stop. */
  emit: (token: number) => boolean;
}

export async function decodeLoop(l: LoadedModel, r: DecodeRequest): Promise<{ stats: Omit<GenerationStats, 'imagesPreprocessed'>; logits?: Float32Array }> {
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
  const history = ids.slice();
  writeBuffer(l.gpu, l.penalty.buffer, 0, Uint32Array.from(history));
  const uniform = seededUniforms(sampling.seed);
  let finish: FinishReason = 'length';
  let generated = 0;
  let grammarMs = 0;
  const constraint = r.constraint;
  const t0 = performance.now();
  for (let step = 0; step < budget; step++) {
    if (signal?.aborted) {
      finish = 'abort';
      break;
    }
    const u = uniform();
    // topK 0 ("off") keeps the TOPK_MAX most likely tokens: the GPU sampler's candidate bound.
    const gpuOpts = { ...sampling, temperature: sampling.greedy ? 0 : sampling.temperature, topK: sampling.topK || TOPK_MAX, u };
    if (constraint) {
      // Computed on the CPU while the GPU runs the step just submitted by `append`.
      const tm = performance.now();
      const allowed = await constraint.mask();
      grammarMs += performance.now() - tm;
      writeBuffer(l.gpu, l.allowed.buffer, 0, allowed);
    }
    record(l.gpu, 'sample', (ctx) => {
      if (constraint) maskLogits(ctx, model.logits, l.allowed, model.config.text.vocabSize);
      l.sampler.record(ctx, model.logits, gpuOpts, sampling.repetitionPenalty !== 1 ? { ids: l.penalty, count: history.length } : undefined);
    });
    const { token } = await l.sampler.read();
    if (constraint) {
      const tm = performance.now();
      constraint.accept(token);
      grammarMs += performance.now() - tm;
    }
    if (token === model.config.tokens.eos) {
      finish = 'eos';
      break;
    }
    generated++;
    if (r.emit(token)) {
      finish = 'stop';
      break;
    }
    if (step + 1 < budget) {
      writeBuffer(l.gpu, l.penalty.buffer, history.length * 4, Uint32Array.of(token));
      history.push(token);
      model.append(token);
    }
  }
  const decodeMs = performance.now() - t0;
  if (finish === 'abort' && generated === 0 && signal?.aborted) {
    // Nothing was produced: surface the abort as an error, like fetch does.
    throw new AbortError();
  }
  return {
    logits: pre.logits,
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
