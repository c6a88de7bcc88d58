/**
 * Bench section `grammar`: what a `response_format` costs per token, through `decodeLoop` (the
 * code path of `chat`), greedy, on the same turn in these modes after a warm-up:
 *  - `free`: no grammar, steps submitted DECODE_RING ahead (the default loop);
 *  - `window1`: no grammar, one step at a time (what a grammar forces: the mask of step k+1
 *    follows token k), so `window1CostMsPerToken` = window1 - free, per token;
 *  - one per schema of SCHEMAS under `jsonSchema.<name>`: the grammar on (window 1, mask computed
 *    on the CPU, uploaded, applied on the GPU before sampling); `grammarCostMsPerToken` = that
 *    run - window1, per token.
 * No schema can end before `TOKENS`, so every run generates exactly `TOKENS` tokens and the modes
 * are comparable; each mode is run ROUNDS times, interleaved, and its median run reported.
 * Also per schema: `grammarCpuMsPerToken` (`stats.grammarMs` / tokens: computing the mask and
 * writing it), `maskComputeMsPerToken` (xgrammar alone, along the same tokens, no GPU),
 * `compileMs` (its first compile; the first schema's includes building the vocabulary table) and
 * `startMs` (a new matcher for a request once compiled); per model `maskUploadMs` (the 4 bytes per
 * 32 tokens `writeBuffer` call, CPU side) and `maskApplyGpuMs` (the `logit_mask` dispatch alone).
 * Models: `tiny-screens` (the embedded model, vocabulary 2048) and `tekken-131k` (random q4
 * weights at the embedded model's shapes with the real 131072-token Tekken vocabulary, tokenizer
 * from ../shared/fixtures/tokenizers/tekken-240718), where the mask is 16 KiB per step.
 * Tokens are meaningless on random weights; only their cost is measured.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { Tensor, writeBuffer } from '../../src/gpu/tensor.js';
import type { ModelConfig } from '../../src/config.js';
import { RandomWeights } from '../../src/model/random-weights.js';
import { VisionLanguageModel } from '../../src/model/vlm.js';
import { Sampler } from '../../src/kernels/sampling.js';
import { maskLogits } from '../../src/kernels/logit-mask.js';
import { resolveSampling } from '../../src/model/sampler.js';
import { decodeLoop, type DecodeTarget } from '../../src/engine/decode-loop.js';
import { loadModel, releaseModel } from '../../src/engine/load.js';
import { Grammars } from '../../src/grammar/constraint.js';
import { grammarSpec, type GrammarSpec } from '../../src/grammar/response-format.js';
import { loadTokenizer, type Tokenizer } from '../../src/text/tokenizer.js';
import { compileModelPipelines } from '../../src/model/pipelines.js';
import type { PreparedTurn } from '../../src/engine/turn.js';
import { tinyModelSource } from './e2e.js';
import { timeDispatches } from './timing.js';

/** Generated tokens per timed run. */
const TOKENS = 48;
const QUESTION_TOKENS = 16;
/** Timed runs of each mode (the median is reported). */
const ROUNDS = 3;
/** Repetitions of the upload timing. */
const UPLOADS = 200;
/**
 * Schemas that no run can complete before TOKENS (each array item is at least 2 tokens): `digits`
 * (one-digit integers: few allowed tokens per step, xgrammar's easy case) and `strings` (free
 * strings: most of the vocabulary allowed inside them, its costly case on a large vocabulary).
 */
const SCHEMAS = {
  digits: {
    type: 'object',
    properties: { digits: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 9 }, minItems: 1000 } },
    required: ['digits'],
  },
  strings: {
    type: 'object',
    properties: { notes: { type: 'array', items: { type: 'string' }, minItems: 1000 } },
    required: ['notes'],
  },
};
type SchemaName = keyof typeof SCHEMAS;

/** Where the 131072-token Tekken tokenizer is fetched from (null: that model is skipped). */
export const tekkenSource: { url: string | null; fetch?: typeof fetch } = {
  url: typeof location !== 'undefined' ? new URL('/shared/fixtures/tokenizers/tekken-240718/tekken.json', location.href).href : null,
};

type Target = DecodeTarget & { allowed: Tensor; tokenizer: Tokenizer; grammars: Grammars };

/** A text turn of QUESTION_TOKENS ids in the instruct format. */
function textTurn(c: ModelConfig): PreparedTurn {
  const question = Array.from({ length: QUESTION_TOKENS }, (_, i) => 1000 + ((i * 7919) % (c.text.vocabSize - 1000)));
  return { ids: [c.tokens.bos, c.tokens.inst, ...question, c.tokens.instEnd], images: [] };
}

type Mode = 'free' | 'window1' | SchemaName;

async function measure(t: Target, log: (line: string) => void) {
  const { gpu, model } = t;
  const turn = textTurn(model.config);
  const sampling = resolveSampling({ temperature: 0 });
  const names = Object.keys(SCHEMAS) as SchemaName[];
  const specs = Object.fromEntries(names.map((n) => [n, grammarSpec({ type: 'json_schema', json_schema: { name: n, schema: SCHEMAS[n] } })!])) as Record<SchemaName, GrammarSpec>;
  const compileMs = {} as Record<SchemaName, number>;
  for (const n of names) {
    const tc = performance.now();
    await t.grammars.compile(specs[n]); // the first also builds the vocabulary table
    compileMs[n] = performance.now() - tc;
  }

  const run = async (mode: Mode) => {
    model.cache.truncate(0);
    const spec = mode === 'free' || mode === 'window1' ? null : specs[mode];
    const ts = performance.now();
    const constraint = spec ? await t.grammars.start(spec) : null;
    const startMs = performance.now() - ts;
    const tokens: number[] = [];
    try {
      const out = await decodeLoop(t, {
        turn, sampling, maxTokens: TOKENS, returnLogits: false, constraint,
        window: mode === 'window1' ? 1 : undefined,
        ignoreEos: !spec,
        emit: (tok) => {
          tokens.push(tok);
          return false;
        },
      });
      const s = out.stats;
      if (s.generatedTokens !== TOKENS) throw new Error(`${mode}: ${s.generatedTokens} tokens, expected ${TOKENS} (${s.finishReason})`);
      return { msPerToken: s.decodeMs / s.generatedTokens, grammarMs: s.grammarMs, startMs, tokens, cpuMs: out.profile.cpuMs };
    } finally {
      constraint?.dispose();
    }
  };
  type Run = Awaited<ReturnType<typeof run>>;
  const modes: Mode[] = ['free', 'window1', ...names];
  for (const m of modes) await run(m); // warm-up: bind groups, read-back ring, matchers
  // The modes interleaved ROUNDS times, each reported by its median run: other load on the
  // machine then shifts all of them alike instead of one.
  const rounds = Object.fromEntries(modes.map((m) => [m, [] as Run[]])) as Record<Mode, Run[]>;
  for (let i = 0; i < ROUNDS; i++) for (const m of modes) rounds[m].push(await run(m));
  const median = (rs: Run[]) => rs.slice().sort((a, b) => a.msPerToken - b.msPerToken)[rs.length >> 1]!;
  const free = median(rounds.free);
  const window1 = median(rounds.window1);

  let mask: Uint32Array = new Uint32Array(0);
  const jsonSchema: Record<string, unknown> = {};
  for (const n of names) {
    const json = median(rounds[n]);
    // xgrammar alone along the tokens the constrained run produced: mask, then accept.
    const c = await t.grammars.start(specs[n]);
    const tm = performance.now();
    for (const tok of json.tokens) {
      mask = await c.mask();
      c.accept(tok);
    }
    const maskComputeMs = (performance.now() - tm) / json.tokens.length;
    c.dispose();
    log(`${n}: ms/token free ${free.msPerToken.toFixed(2)}, window 1 ${window1.msPerToken.toFixed(2)}, json_schema ${json.msPerToken.toFixed(2)} (grammar CPU ${(json.grammarMs / TOKENS).toFixed(3)}, xgrammar ${maskComputeMs.toFixed(3)})`);
    jsonSchema[n] = {
      tokensPerSecond: 1000 / json.msPerToken,
      grammarCostMsPerToken: json.msPerToken - window1.msPerToken,
      grammarCpuMsPerToken: json.grammarMs / TOKENS,
      maskComputeMsPerToken: maskComputeMs,
      msPerTokenRuns: rounds[n].map((r) => r.msPerToken),
      loopCpuMsPerToken: json.cpuMs / TOKENS,
      compileMs: compileMs[n],
      startMs: json.startMs,
    };
  }
  // The upload as the loop does it (CPU side of writeBuffer), then its GPU application alone.
  const tu = performance.now();
  for (let i = 0; i < UPLOADS; i++) writeBuffer(gpu, t.allowed.buffer, 0, mask);
  const maskUploadMs = (performance.now() - tu) / UPLOADS;
  await gpu.sync();
  const apply = await timeDispatches(gpu, 'grammar.mask', (ctx) => maskLogits(ctx, model.decoder.logits, t.allowed, model.config.text.vocabSize));

  return {
    vocabSize: model.config.text.vocabSize,
    maskBytes: mask.byteLength,
    tokens: TOKENS,
    freeTokensPerSecond: 1000 / free.msPerToken,
    window1TokensPerSecond: 1000 / window1.msPerToken,
    window1CostMsPerToken: window1.msPerToken - free.msPerToken,
    maskUploadMs,
    maskApplyGpuMs: apply.ms,
    maskApplyTiming: apply.method,
    // Every timed run, to show the spread (software adapters on a shared machine are noisy).
    msPerTokenRuns: { free: rounds.free.map((r) => r.msPerToken), window1: rounds.window1.map((r) => r.msPerToken) },
    loopCpuMsPerToken: { free: free.cpuMs / TOKENS, window1: window1.cpuMs / TOKENS },
    jsonSchema,
  };
}

async function tinyScreens(log: (line: string) => void) {
  const src = tinyModelSource;
  if (!src.url) return { skipped: 'no URL for the embedded model in this runtime' };
  const l = await loadModel({ url: src.url, fetch: src.fetch });
  try {
    return { config: l.model.config, result: await measure(l, log) };
  } finally {
    await releaseModel(l);
  }
}

async function tekken131k(gpu: Gpu, base: ModelConfig, log: (line: string) => void) {
  const src = tekkenSource;
  if (!src.url) return { skipped: 'no URL for the Tekken tokenizer in this runtime' };
  const res = await (src.fetch ?? fetch)(src.url);
  if (!res.ok) throw new Error(`${src.url}: HTTP ${res.status}`);
  const tokenizer = loadTokenizer(new Uint8Array(await res.arrayBuffer()));
  const cfg: ModelConfig = { ...base, text: { ...base.text, vocabSize: tokenizer.vocabSize } };
  const weights = new RandomWeights(gpu, cfg, { decoder: 'q4' });
  const model = new VisionLanguageModel(gpu, cfg, weights, { maxContext: 256, kvCache: 'f16' });
  const sampler = new Sampler(gpu, cfg.text.vocabSize);
  const penalty = Tensor.empty(gpu, [model.limits.maxContext], 'u32', 'penalty-ids');
  const allowed = Tensor.empty(gpu, [Math.ceil(cfg.text.vocabSize / 32)], 'u32', 'allowed-tokens');
  try {
    await compileModelPipelines(gpu, model, sampler);
    const grammars = new Grammars(tokenizer, cfg.tokens.eos);
    return await measure({ gpu, model, sampler, penalty, allowed, tokenizer, grammars }, log);
  } finally {
    model.destroy();
    weights.destroy();
    sampler.destroy();
    penalty.destroy();
    allowed.destroy();
  }
}

export async function run(gpu: Gpu, log: (line: string) => void = () => {}): Promise<object> {
  const out: Record<string, unknown> = { schemas: SCHEMAS };
  const tiny = await tinyScreens(log);
  out['tiny-screens'] = 'result' in tiny ? tiny.result : tiny;
  log('tiny-screens done');
  out['tekken-131k'] = 'config' in tiny && tiny.config ? await tekken131k(gpu, tiny.config, log) : { skipped: 'needs the embedded model\'s shapes' };
  log('tekken-131k done');
  return { grammar: out };
}
