/**
 * Builders of OpenAI response objects from the engine's text and stats: a `ChatCompletion`, and
 * the `ChatCompletionChunk`s of a stream (a first chunk with the role, content deltas, and a
 * last chunk with `finish_reason` and `usage`).
 */
import type { CompletionUsage } from 'openai/resources/completions';
import type { FinishReason, GenerationStats } from '../engine/types.js';
import type { ChatCompletion, ChatCompletionChunk } from './types.js';

export type OpenAIFinishReason = 'stop' | 'length';

/** eos and stop strings end a turn naturally ("stop"); the token budget is "length". */
export function finishReason(f: FinishReason): OpenAIFinishReason {
  return f === 'length' ? 'length' : 'stop';
}

export function usageOf(stats: Pick<GenerationStats, 'promptTokens' | 'generatedTokens'>): CompletionUsage {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.generatedTokens, total_tokens: stats.promptTokens + stats.generatedTokens };
}

export function completionId(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return `chatcmpl-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** Identity of one response: the same id, time and model on every chunk. */
export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

export function responseHead(model: string): ResponseHead {
  return { id: completionId(), created: Math.floor(Date.now() / 1000), model };
}

export function completion(head: ResponseHead, text: string, stats: GenerationStats): ChatCompletion {
  return {
    ...head,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: finishReason(stats.finishReason), logprobs: null }],
    usage: usageOf(stats),
  };
}

export function chunk(head: ResponseHead, delta: ChatCompletionChunk.Choice.Delta, end?: GenerationStats): ChatCompletionChunk {
  return {
    ...head,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason: end ? finishReason(end.finishReason) : null, logprobs: null }],
    ...(end ? { usage: usageOf(end) } : {}),
  };
}
