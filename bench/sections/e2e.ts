/**
 * Bench section `e2e`: what a user waits for, through the code path of `chat` (the worker
 * excepted): prompt ids with an image grid -> image encode -> prefill -> GPU sampling -> token
 * read back -> next step, i.e. `decodeLoop` (src/engine/decode-loop.ts), greedy, at least
 * MIN_TOKENS generated tokens after a warm-up run. Per model, under `e2e.<model>`:
 *  - decodeTokensPerSecond: wall clock per generated token over a timed run (tokens after the
 *    first / time from the first to the last reaching the CPU), the median of up to TIMED_RUNS
 *    runs (`msPerTokenRuns`). Not the median single interval: with steps running ahead, tokens
 *    reach the CPU in bursts, so single intervals alternate between ~0 and several steps
 *    (`medianIntervalMs` is reported too, for the record);
 *    fractionOfBandwidthLimit: (weight bytes per token / copy bandwidth of this run) / that time;
 *  - gpuOnlyDecodeTokensPerSecond: the whole decode step as the loop records it (embedding of the
 *    GPU-held token, layers, final norm + lm_head, sampling) timed back to back in one pass, the
 *    older headline kind of figure, right after each timed run, one window of as many steps as
 *    the run generated (up to GPU_ONLY_MAX_MS of them; `gpuOnlyMsRuns`, median) at the
 *    run's middle position (`gpuOnlyAtPosition`: attention's work grows with the keys, so the
 *    middle step is the run's mean step; timing the first would flatter it); `gpuOnly`: its parts
 *    timed alone; endToEndOverGpuOnly: the median of each run's ratio to the GPU-only step timed
 *    right after it; cpuMsPerToken: JS time per token spent encoding, submitting and handling
 *    read-back tokens (the loop's own count);
 *  - dispatchesPerToken (runtime count over the timed decode), dispatchesPerDecodeLayer (runtime
 *    count of recording one decode step's layers, / layers);
 *  - ttftMs (start of the turn -> first token on the CPU: image encode + prefill + first step),
 *    imageEncodeMs, prefillTokensPerSecond; peakGpuBytes: every GPU buffer alive at the peak
 *    (`peakGpuBytesTop`, pixtral-12b: the largest kinds of buffer in it, by label);
 *  - encode: the CPU cost of recording one decode step through the library against the same
 *    WebGPU calls replayed raw (`encodeCost`), per step and per dispatch;
 *  - pixtral-12b (both formats): `ropeInAttention` (the decoder's default on this adapter) and
 *    `gpuOnlyOtherRopePlacement`: the GPU-only layers and dispatches per layer with it flipped,
 *    the figure that decides that default;
 *  - pixtral-12b runs twice: with `visionWeights: 'host'` (the vision layers in host memory,
 *    streamed through two GPU slots: the figures at the top level, `visionWeights: 'host'`) and
 *    resident (`visionOnGpu`: its peakGpuBytes, imageEncodeMs, ttftMs and extrapolated peak, from
 *    one turn of FIRST_TOKENS tokens after a one-token warm-up: the same decoder as the host run);
 *  - prefillGflops (2 x decoder linear weights x layers x prompt tokens / prefill time: the
 *    linears only, attention and lm_head left out) and prefillFractionOfMatmulPeak, of the dense
 *    matmul peak measured in the same run (`matmulPeakGflops`, bench/sections/matmul.ts).
 * Models: `pixtral-12b` (random weights at the real shapes; all 40 layers on GPUs, LAYERS_SOFTWARE
 * on software adapters with `layersRun` recorded and an `extrapolated40Layers` block, labelled)
 * and `tiny-screens` (the embedded model `public/models/pixtral-tiny-screens-q4`, whole, loaded
 * through the real loader; also firstAnswerMs and laterAnswerMs of `Engine.chat` on a fresh load),
 * and `tiny-screens-gguf`: the same model as llama.cpp's Q4_0 file of it (the shared fixture
 * `gguf/screens`, Q4_0 linears with a Q8_0 lm_head, + its F16 mmproj) through the GGUF loader: what
 * choosing a community GGUF over the project's q4 costs end to end on the same adapter;
 * `pixtral-12b-q4_k_m`: pixtral-12b as a llama.cpp Q4_K_M pair at the real shapes (random blocks
 * made on read, `random-gguf.ts`) through the GGUF loader, vision weights on the host; on
 * software adapters 2 decoder layers (a Q6_K-heavy one and a plain one), extrapolated as above,
 * and only when named (NAMED_ONLY_SOFTWARE; else `{ skipped }`), so the whole section stays minutes there.
 * Random weights give meaningless tokens; EOS does not end these runs (`ignoreEos`).
 * `e2eModels` (the bench's `--models a,b`, `?models=` on the page) runs only the named models.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { record } from '../../src/gpu/kernel.js';
import { Tensor } from '../../src/gpu/tensor.js';
import { PIXTRAL_12B_2409, type ModelConfig } from '../../src/config.js';
import { RandomWeights } from '../../src/model/random-weights.js';
import { GgufWeights } from '../../src/gguf/gpu-weights.js';
import { randomQ4KM } from './random-gguf.js';
import { VisionLanguageModel, type VlmOptions } from '../../src/model/vlm.js';
import { placeOnHost } from '../../src/gpu/host-buffer.js';
import { isVisionLayerLabel } from '../../src/model/vision-slots.js';
import { KvCache } from '../../src/model/kv-cache.js';
import { expectedTensors } from '../../src/weights/tensor-set.js';
import { Sampler } from '../../src/kernels/sampling.js';
import { sizeForImage } from '../../src/image/size.js';
import { renderPrompt } from '../../src/text/prompt.js';
import { resolveSampling } from '../../src/model/sampler.js';
import { decodeLoop, type DecodeTarget } from '../../src/engine/decode-loop.js';
import { DecodeSteps } from '../../src/model/decode-steps.js';
import { loadModel, releaseModel } from '../../src/engine/load.js';
import type { LoadOptions } from '../../src/engine/types.js';
import { pixelKey, type PreparedTurn } from '../../src/engine/turn.js';
import { Engine } from '../../src/engine/engine.js';
import { compileModelPipelines } from '../../src/model/pipelines.js';
import { defaultQ4MatMulVariant } from '../../src/kernels/q4.js';
import { describeShape, subgroupMatrixVerdict } from '../../src/kernels/subgroup-matrix.js';
import { defaultAttentionPrefillVariant } from '../../src/kernels/attention.js';
import { decoderLayerWeights } from '../../src/presets.js';
import { copyGBps, timeDispatches } from './timing.js';
import { matmulPeak } from './matmul.js';

/** Generated tokens timed per model (after a warm-up run). */
const MIN_TOKENS = 64;
/**
 * Timed turns per model, as many as fit TIMED_RUNS_BUDGET_MS (one at least: a software adapter's
 * Pixtral-12B takes minutes per turn); the median one's figures are reported, all in `msPerTokenRuns`.
 */
const TIMED_RUNS = 3;
const TIMED_RUNS_BUDGET_MS = 20_000;
/** The GPU-only run after each timed run covers its steps up to this long (Pixtral-12B on a CPU: 2). */
const GPU_ONLY_MAX_MS = 5_000;
/** The GPU sampler's settings for a greedy step, as the GPU-only timings and `encodeCost` record it. */
const GREEDY = { temperature: 0, topK: 1, topP: 1, repetitionPenalty: 1, u: 0 };
/** Decoder and vision layers run on software adapters (minutes per full model there). */
const LAYERS_SOFTWARE = 1;
const VISION_LAYERS_SOFTWARE = 2; // both slots of the host mode, filled and used
/** Longest image edge on software adapters: 1024x1024 -> 64x64 (4x4 patches, 20 tokens). */
const LONGEST_EDGE_SOFTWARE = 64;
const QUESTION_TOKENS = 16;
/**
 * Tokens generated by pixtral-12b's resident twin (`visionOnGpu`), whose figures are its memory
 * and time to first token: its decoder is the host run's, measured there over MIN_TOKENS.
 */
const FIRST_TOKENS = 8;
/** Models a software adapter runs only when named (`--models`): Q4_K_M takes ~11 minutes there. */
const NAMED_ONLY_SOFTWARE: readonly string[] = ['pixtral-12b-q4_k_m'];

/** Where the embedded model is fetched from (the page's server; in Node a folder, `--tiny-model`). */
export const tinyModelSource: { url: string | null; fetch?: typeof fetch; openModel?: LoadOptions['openModel'] } = {
  url: typeof location !== 'undefined' ? new URL('/models/pixtral-tiny-screens-q4/', location.href).href : null,
};

/** The embedded model as llama.cpp's Q4_0 GGUF pair (the shared fixtures, served by the bench's server). */
const tinyGgufSource: { url: string | null; mmproj?: string } = typeof location !== 'undefined'
  ? {
      url: new URL('/shared/fixtures/gguf/screens/pixtral-tiny-screens-text-q4_0.gguf', location.href).href,
      mmproj: new URL('/shared/fixtures/gguf/screens/pixtral-tiny-screens-mmproj-f16.gguf', location.href).href,
    }
  : { url: null };

const MODELS = ['tiny-screens', 'tiny-screens-gguf', 'pixtral-12b', 'pixtral-12b-q4_k_m'] as const;

/** Models to run (all when null); bench/node.ts sets it from --models, the page from ?models=. */
export const e2eModels: { only: string[] | null } = {
  only: typeof location !== 'undefined' ? (new URLSearchParams(location.search).get('models')?.split(',').filter(Boolean) ?? null) : null,
};

/** Bytes of one Pixtral-ViT layer as random weights store it: f16 matrices, f32 norms. */
function visionLayerBytes(): number {
  return expectedTensors(PIXTRAL_12B_2409)
    .filter((t) => t.name.startsWith('vision_tower.transformer.layers.0.'))
    .reduce((a, t) => a + t.shape.reduce((n, x) => n * x, 1) * (t.role === 'norm' || t.role === 'bias' ? 4 : 2), 0);
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A user turn: one image (as its token grid) and a 16-token question, in the instruct format. */
function imageTurn(c: ModelConfig, pixels: { pixels: Float32Array; height: number; width: number }, tokenPx: number): PreparedTurn {
  const rows = pixels.height / tokenPx;
  const cols = pixels.width / tokenPx;
  const question = Array.from({ length: QUESTION_TOKENS }, (_, i) => 1000 + ((i * 7919) % (c.text.vocabSize - 1000)));
  // Random weights come without a tokenizer: the config's ids, in Pixtral-12B's (v3) layout.
  const ids = { ...c.tokens, system: undefined, systemEnd: undefined };
  const r = renderPrompt([{ role: 'user', content: [{ type: 'image', rows, cols }, { type: 'text', text: 'q' }] }], 'v3', ids, () => question);
  const im = r.images[0]!;
  return { ids: r.ids, images: [{ start: im.start, rows: im.rows, cols: im.cols, image: pixels, key: pixelKey(pixels) }] };
}

/** Dispatches one decode step's layers at position `pos` record, counted by the runtime (recorded, never submitted). */
function countLayerDispatches(gpu: Gpu, model: VisionLanguageModel, pos: number): number {
  const before = gpu.ledger.dispatches;
  const enc = gpu.device.createCommandEncoder({ label: 'count' });
  const pass = enc.beginComputePass({ label: 'count' });
  model.decoder.layers({ gpu, pass }, 1, pos, model.cache);
  pass.end();
  return gpu.ledger.dispatches - before;
}

/** The position whose decode step is the timed run's mean step: the middle of its MIN_TOKENS + 1 steps. */
function midRunPosition(turn: PreparedTurn): number {
  return turn.ids.length + Math.floor(MIN_TOKENS / 2);
}

/**
 * GPU time of one decode step as the loop records it (embedding of the GPU-held token, layers,
 * final norm + lm_head, greedy sampling: `DecodeSteps.record`) at position `pos`: the GPU-only
 * figure. One run of as many steps back to back in one pass as the timed run generated, or as fit
 * GPU_ONLY_MAX_MS: like the run it is set against, one window of the same length, not the best of
 * several (on a machine whose speed swings, the best short window is faster than a typical one).
 */
async function gpuOnlyStepMs(t: DecodeTarget, pos: number, runMs: number): Promise<number> {
  const steps = new DecodeSteps(t.gpu, t.model, t.sampler);
  const opts = { repeats: 1, minIters: 1, maxIters: MIN_TOKENS, targetMs: Math.min(runMs, GPU_ONLY_MAX_MS) };
  try {
    return (await timeDispatches(t.gpu, 'e2e.step', (ctx) => steps.record(ctx, { feedPos: pos, sampling: GREEDY }), opts)).ms;
  } finally {
    steps.destroy();
  }
}

/**
 * The GPU-only step's parts, each repeated alone: layers (with embedding), final norm + lm_head,
 * sampling; for the breakdown and the per-layer extrapolation. On a CPU adapter a part repeated
 * alone keeps its weights in the CPU's caches, so the parts can add up to less than the step.
 */
async function gpuOnlyParts(t: DecodeTarget, pos: number): Promise<{ layersMs: number; headMs: number; sampleMs: number }> {
  const { gpu, model, sampler } = t;
  const dec = model.decoder;
  const layersMs = await gpuOnlyLayersMs(t, pos);
  // The final norm and lm_head as a decode step records them (`decodeLogits`).
  const head = await timeDispatches(gpu, 'e2e.lm_head', (ctx) => dec.decodeLogits(ctx));
  const sample = await timeDispatches(gpu, 'e2e.sample', (ctx) => sampler.record(ctx, dec.logits, GREEDY));
  return { layersMs, headMs: head.ms, sampleMs: sample.ms };
}

/** GPU time of one decode step's embedding and layers, recorded back to back. */
async function gpuOnlyLayersMs(t: DecodeTarget, pos: number): Promise<number> {
  const one = Uint32Array.of(1);
  const dec = t.model.decoder;
  const layers = await timeDispatches(t.gpu, 'e2e.layers', (ctx) => {
    dec.embedTokens(ctx, one);
    dec.layers(ctx, 1, pos, t.model.cache);
  });
  return layers.ms;
}

/**
 * CPU cost of recording one decode step (embedding of the GPU-held token, layers, lm_head,
 * sampling), not submitted: `msPerStep` through the library (kernel wrappers, pipeline and bind
 * group lookups, uniforms: what runs per token) and `rawMsPerStep`, the same pipelines, bind
 * groups and workgroup counts replayed straight into WebGPU, i.e. the implementation's own cost
 * (Dawn in Node; Blink + the wire in Chromium). The difference is the library's share of
 * `cpuMsPerToken`, the part that limits decode once a GPU runs a step faster than the CPU records it.
 */
function encodeCost(t: DecodeTarget, pos: number) {
  const { gpu, model, sampler } = t;
  const steps = new DecodeSteps(gpu, model, sampler);
  const calls: { pipeline: GPUComputePipeline; group: GPUBindGroup; wg: [number, number, number] }[] = [];
  const step = (capture: boolean) => {
    const enc = gpu.device.createCommandEncoder({ label: 'e2e.encode' });
    const pass = enc.beginComputePass();
    steps.record({ gpu, pass: capture ? capturing(pass, calls) : pass }, { feedPos: pos, sampling: GREEDY });
    pass.end();
    enc.finish();
    gpu.uniforms.reset(); // nothing is submitted: the arena's slices are handed out again
  };
  step(true);
  const reps = gpu.isSoftware ? 200 : 500;
  const time = (fn: () => void) => {
    const ms: number[] = [];
    // Best of 5 rounds: the first ones include the JIT's warm-up.
    for (let r = 0; r < 5; r++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) fn();
      ms.push((performance.now() - t0) / reps);
    }
    return Math.min(...ms);
  };
  const ours = time(() => step(false));
  const raw = time(() => {
    const enc = gpu.device.createCommandEncoder({ label: 'e2e.encode-raw' });
    const pass = enc.beginComputePass();
    for (const c of calls) {
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.group);
      pass.dispatchWorkgroups(...c.wg);
    }
    pass.end();
    enc.finish();
  });
  steps.destroy();
  return { dispatches: calls.length, msPerStep: ours, rawMsPerStep: raw, usPerDispatch: (ours * 1000) / calls.length, rawUsPerDispatch: (raw * 1000) / calls.length };
}

/** A pass that also notes each dispatch's pipeline, bind group and workgroup counts in `calls`. */
function capturing(pass: GPUComputePassEncoder, calls: { pipeline: GPUComputePipeline; group: GPUBindGroup; wg: [number, number, number] }[]): GPUComputePassEncoder {
  let pipeline: GPUComputePipeline | null = null;
  let group: GPUBindGroup | null = null;
  return Object.assign(Object.create(pass) as GPUComputePassEncoder, {
    setPipeline: (p: GPUComputePipeline) => pass.setPipeline((pipeline = p)),
    setBindGroup: (i: number, g: GPUBindGroup) => pass.setBindGroup(i, (group = g)),
    dispatchWorkgroups: (x: number, y = 1, z = 1) => {
      calls.push({ pipeline: pipeline!, group: group!, wg: [x, y, z] });
      pass.dispatchWorkgroups(x, y, z);
    },
  });
}

/**
 * The GPU-only layers with the other RoPE placement (`Decoder.ropeInAttention` flipped: RoPE and
 * the cache append inside attention, or a dispatch of their own), at the same position: the
 * figure that decides its default per kind of adapter. Bit-identical results either way.
 */
async function otherRopePlacement(t: DecodeTarget, turn: PreparedTurn, layersRun: number) {
  const dec = t.model.decoder;
  dec.ropeInAttention = !dec.ropeInAttention;
  try {
    const layersMs = await gpuOnlyLayersMs(t, midRunPosition(turn));
    const dispatches = countLayerDispatches(t.gpu, t.model, turn.ids.length) / layersRun;
    return { ropeInAttention: dec.ropeInAttention, layersMs, dispatchesPerDecodeLayer: dispatches };
  } finally {
    dec.ropeInAttention = !dec.ropeInAttention;
  }
}

/** One greedy turn through the decode loop on an emptied cache, with the time each token reached the CPU. */
async function runTurn(t: DecodeTarget, turn: PreparedTurn, maxTokens: number) {
  t.model.cache.truncate(0);
  const times: number[] = [];
  const t0 = performance.now();
  const out = await decodeLoop(t, {
    turn, sampling: resolveSampling({ temperature: 0 }), maxTokens, returnLogits: false, ignoreEos: true,
    emit: () => {
      times.push(performance.now());
      return false;
    },
  });
  return { out, times, t0 };
}
type TurnRun = Awaited<ReturnType<typeof runTurn>>;

/** Wall clock per token: from the first token reaching the CPU to the last. */
const perToken = (x: TurnRun) => (x.times.at(-1)! - x.times[0]!) / Math.max(1, x.times.length - 1);

/**
 * Warm-up: a short text turn of `tokens` tokens (pipelines are compiled at load, as `loadModel`
 * does; this warms the decode step's bind groups and the read-back ring).
 */
async function warmUp(t: DecodeTarget, tokens: number, log: (line: string) => void): Promise<void> {
  const c = t.model.config.tokens;
  const w = await runTurn(t, { ids: [c.bos, c.inst, 100, 101, c.instEnd], images: [] }, tokens);
  log(`warm-up: ${w.out.stats.generatedTokens} tokens in ${w.out.stats.decodeMs.toFixed(0)} ms`);
}

/** One timed turn through the decode loop, after a short warm-up turn; the cache is emptied before each. */
async function timedTurn(t: DecodeTarget, turn: PreparedTurn, copy: number, peakGflops: number, log: (line: string) => void) {
  const { model } = t;
  await warmUp(t, 4, log);
  const runs: TurnRun[] = [];
  const gpuOnlyRuns: number[] = [];
  const tRuns = performance.now();
  for (let i = 0; i < TIMED_RUNS; i++) {
    const x = await runTurn(t, turn, MIN_TOKENS + 1);
    const st = x.out.stats;
    log(`timed run ${i + 1}: ${st.promptTokens} prompt tokens, encode ${st.imageEncodeMs.toFixed(0)} ms, prefill ${st.prefillMs.toFixed(0)} ms, ${st.generatedTokens} tokens in ${st.decodeMs.toFixed(0)} ms (${perToken(x).toFixed(2)} ms per token)`);
    runs.push(x);
    // Right after each run, the GPU-only step at the run's middle position: a machine whose speed
    // drifts (other processes on a CPU adapter's cores) moves both figures of a pair together.
    gpuOnlyRuns.push(await gpuOnlyStepMs(t, midRunPosition(turn), st.decodeMs));
    // Another run only while the runs so far leave room for it in the budget.
    if ((performance.now() - tRuns) * (1 + 1 / runs.length) > TIMED_RUNS_BUDGET_MS) break;
  }
  // The median run (of two, the slower): what a user typically waits for, where one run can be
  // slowed by another process on the machine.
  const r = runs.slice().sort((a, b) => perToken(a) - perToken(b))[runs.length >> 1]!;
  const gpuOnlyMs = median(gpuOnlyRuns);
  const intervals = r.times.slice(1).map((x, i) => x - r.times[i]!);
  const msPerToken = perToken(r);
  const bytes = model.decoder.decodeWeightBytes().total;
  const limitMs = bytes / (copy * 1e6);
  const s = r.out.stats;
  const mc = model.config;
  const prefillGflops = (2 * decoderLayerWeights(mc) * mc.text.numLayers * s.promptTokens) / (s.prefillMs * 1e6);
  return {
    generatedTokens: s.generatedTokens,
    promptTokens: s.promptTokens,
    imageTokens: s.imageTokens,
    decodeTokensPerSecond: 1000 / msPerToken,
    msPerToken,
    msPerTokenRuns: runs.map(perToken),
    gpuOnlyDecodeTokensPerSecond: 1000 / gpuOnlyMs,
    gpuOnlyMsPerToken: gpuOnlyMs,
    gpuOnlyMsRuns: gpuOnlyRuns,
    gpuOnlyAtPosition: midRunPosition(turn),
    // The median of the pairs' ratios: each pair measured within seconds of each other.
    endToEndOverGpuOnly: median(runs.map((x, i) => gpuOnlyRuns[i]! / perToken(x))),
    medianIntervalMs: median(intervals),
    weightBytesPerToken: bytes,
    bandwidthLimitMs: limitMs,
    fractionOfBandwidthLimit: limitMs / msPerToken,
    cpuMsPerToken: r.out.profile.cpuMs / Math.max(1, r.out.profile.steps),
    // Dispatches the decode steps recorded (runtime count), per step.
    dispatchesPerToken: r.out.profile.dispatches / Math.max(1, r.out.profile.steps),
    ttftMs: r.times[0]! - r.t0,
    imageEncodeMs: s.imageEncodeMs,
    prefillMs: s.prefillMs,
    prefillTokensPerSecond: s.prefillTokensPerSecond,
    prefillGflops,
    prefillFractionOfMatmulPeak: prefillGflops / peakGflops,
  };
}

/**
 * The measured peak plus what scales with layers (all of it is alive through the whole turn):
 * each missing decoder layer's weights (linears + norms, as measured on the layers run) and KV
 * cache, each missing vision layer's f16 weights (the random weights' storage rule; host mode
 * holds min(2, layers) vision layers on the GPU, its slots, whatever the count). Activations,
 * embedding, lm_head, projector and the rest do not scale.
 */
function extrapolatedPeak(model: VisionLanguageModel, cfg: ModelConfig, visionWeights: 'gpu' | 'host', measured: number) {
  const full = PIXTRAL_12B_2409;
  const layersRun = cfg.text.numLayers;
  const addedDecoderWeights = (full.text.numLayers - layersRun) * (model.decoder.decodeWeightBytes().layers / layersRun);
  const addedKv = KvCache.bytes(full.text, model.limits.maxContext, 'f16') - KvCache.bytes(cfg.text, model.limits.maxContext, 'f16');
  const onGpu = (n: number) => (visionWeights === 'host' ? Math.min(2, n) : n);
  const addedVision = (onGpu(full.vision.numLayers) - onGpu(cfg.vision.numLayers)) * visionLayerBytes();
  return {
    peakGpuBytes: measured + addedDecoderWeights + addedKv + addedVision,
    peakGpuBytesParts: { measured, addedDecoderLayerWeights: addedDecoderWeights, addedKvCache: addedKv, addedVisionLayerWeights: addedVision },
  };
}

/**
 * Pixtral-12B at the real shapes: `q4` (the project's format, `RandomWeights`) or `q4_k_m` (a
 * virtual llama.cpp Q4_K_M pair through the GGUF loader, `randomQ4KM`; on software adapters two
 * decoder layers, one of each kind of its type mix, so the per-layer averages extrapolate).
 * `measure: 'first-tokens'` runs one turn of FIRST_TOKENS tokens instead of the timed runs and
 * GPU-only breakdowns, and returns only its memory, image encode, ttft and decode figures (what
 * `visionOnGpu` holds).
 */
async function pixtral12b(
  gpu: Gpu,
  copy: number,
  peakGflops: number,
  log: (line: string) => void,
  visionWeights: 'gpu' | 'host',
  format: 'q4' | 'q4_k_m' = 'q4',
  measure: 'full' | 'first-tokens' = 'full',
): Promise<Record<string, unknown>> {
  const soft = gpu.isSoftware;
  const real = PIXTRAL_12B_2409.text.numLayers;
  // Q4_K_M: a use_more_bits layer (Q6_K v, down) and a plain one.
  const layersRun = soft ? (format === 'q4' ? LAYERS_SOFTWARE : 2) : real;
  const realLayers = soft ? [0, 5] : Array.from({ length: real }, (_, i) => i);
  const visionLayersRun = soft ? VISION_LAYERS_SOFTWARE : PIXTRAL_12B_2409.vision.numLayers;
  const cfg: ModelConfig = {
    ...PIXTRAL_12B_2409,
    text: { ...PIXTRAL_12B_2409.text, numLayers: layersRun },
    vision: { ...PIXTRAL_12B_2409.vision, numLayers: visionLayersRun },
  };
  // What `loadModel` picks for a q4 model: f16 KV cache; 8k context (the memory target's).
  const vlmOptions: VlmOptions = { maxContext: 8192, kvCache: 'f16' };
  gpu.ledger.resetPeak();
  const place = <T>(f: () => Promise<T>) => (visionWeights === 'host' ? placeOnHost(gpu, isVisionLayerLabel, f) : f());
  let weights: { bytes: number; destroy(): void };
  let model: VisionLanguageModel;
  if (format === 'q4') {
    const w = new RandomWeights(gpu, cfg, { decoder: 'q4' });
    weights = w;
    // Random weights are made when the model asks for them: the model is built under the placement.
    model = await place(async () => new VisionLanguageModel(gpu, cfg, w, vlmOptions));
  } else {
    const { model: gm, source } = randomQ4KM(cfg, realLayers, real);
    const w = await place(() => GgufWeights.upload(gpu, gm, { text: source, mmproj: source }));
    weights = { get bytes() { return w.byteLength; }, destroy: () => w.destroy() };
    model = new VisionLanguageModel(gpu, cfg, w, vlmOptions);
  }
  const sampler = new Sampler(gpu, cfg.text.vocabSize);
  const penalty = Tensor.empty(gpu, [model.limits.maxContext], 'u32', 'penalty-ids');
  const target: DecodeTarget = { gpu, model, sampler, penalty };
  try {
    const tc = performance.now();
    const pipelines = await compileModelPipelines(gpu, model, sampler);
    const compileMs = performance.now() - tc;
    log(`pixtral-12b ${format} (vision weights on ${visionWeights}): ${layersRun} layers, ${(weights.bytes / 1e9).toFixed(2)} GB of random weights on the GPU; ${pipelines} pipelines compiled in ${compileMs.toFixed(0)} ms`);
    const longestEdge = soft ? LONGEST_EDGE_SOFTWARE : 1024;
    const size = sizeForImage(1024, 1024, { longestEdge, tokenPx: model.tokenPixels });
    const pixels = { pixels: new Float32Array(3 * size.height * size.width).fill(0.1), height: size.height, width: size.width };
    const turn = imageTurn(cfg, pixels, model.tokenPixels);
    const partial = layersRun !== real || visionLayersRun !== PIXTRAL_12B_2409.vision.numLayers;
    if (measure === 'first-tokens') {
      await warmUp(target, 1, log);
      const x = await runTurn(target, turn, FIRST_TOKENS + 1);
      const st = x.out.stats;
      log(`first tokens: encode ${st.imageEncodeMs.toFixed(0)} ms, prefill ${st.prefillMs.toFixed(0)} ms, then ${perToken(x).toFixed(2)} ms per token`);
      const measured = gpu.ledger.peakBytes;
      return {
        peakGpuBytes: measured,
        imageEncodeMs: st.imageEncodeMs,
        ttftMs: x.times[0]! - x.t0,
        decodeTokens: FIRST_TOKENS,
        decodeTokensPerSecond: 1000 / perToken(x),
        extrapolated40LayersPeakGpuBytes: partial ? extrapolatedPeak(model, cfg, visionWeights, measured).peakGpuBytes : undefined,
      };
    }
    const e2e = await timedTurn(target, turn, copy, peakGflops, log);
    const dispatchesPerDecodeLayer = countLayerDispatches(gpu, model, turn.ids.length) / layersRun;
    const g = await gpuOnlyParts(target, midRunPosition(turn));
    log(`gpu-only step ${e2e.gpuOnlyMsPerToken.toFixed(2)} ms; its parts alone: ${JSON.stringify(g)}`);
    const otherRope = await otherRopePlacement(target, turn, layersRun);
    const encode = encodeCost(target, midRunPosition(turn));
    log(`encode: ${JSON.stringify(encode)}`);
    log(`gpu-only layers with ropeInAttention ${otherRope.ropeInAttention}: ${otherRope.layersMs.toFixed(2)} ms`);
    const gpuMs = e2e.gpuOnlyMsPerToken;
    const peakGpuBytes = gpu.ledger.peakBytes;
    const perLayerMs = g.layersMs / layersRun;
    const out: Record<string, unknown> = {
      format: format === 'q4' ? 'q4 (this project)' : `GGUF Q4_K_M mix (llama.cpp's), layers standing for ${soft ? realLayers.join(', ') : 'all'} of ${real}`,
      visionWeights,
      layersRun,
      visionLayersRun,
      image: soft ? `1024x1024 at longestEdge ${longestEdge} (software adapter): ${size.width}x${size.height}` : '1024x1024',
      questionTokens: QUESTION_TOKENS,
      maxContext: model.limits.maxContext,
      maxPatches: model.limits.maxPatches,
      pipelinesCompiledAtLoad: pipelines,
      compileMs,
      prefillMatmul: prefillMatmul(gpu),
      prefillAttention: defaultAttentionPrefillVariant(gpu, cfg.text.headDim),
      ...e2e,
      gpuOnly: g,
      ropeInAttention: model.decoder.ropeInAttention,
      gpuOnlyOtherRopePlacement: otherRope,
      encode,
      dispatchesPerDecodeLayer,
      peakGpuBytes,
      peakGpuBytesTop: gpu.ledger.peakKinds(),
      randomWeightBytes: weights.bytes,
    };
    if (partial) {
      // Labelled extrapolation: each missing layer adds its GPU time and its weight bytes.
      const layerBytes = model.decoder.decodeWeightBytes().layers / layersRun;
      const ms = e2e.msPerToken + (real - layersRun) * perLayerMs;
      const bytes = e2e.weightBytesPerToken + (real - layersRun) * layerBytes;
      out.extrapolated40Layers = {
        note: `extrapolated from ${layersRun} decoder and ${visionLayersRun} vision layers: + ${real - layersRun} x the measured GPU time and bytes of one decoder layer, + the weights of the missing vision layers on the GPU (${visionWeights === 'host' ? 'none: vision weights on the host, 2 slots measured' : 'resident'})`,
        decodeTokensPerSecond: 1000 / ms,
        fractionOfBandwidthLimit: bytes / (copy * 1e6) / ms,
        gpuOnlyDecodeTokensPerSecond: 1000 / (gpuMs + (real - layersRun) * perLayerMs),
        ...extrapolatedPeak(model, cfg, visionWeights, peakGpuBytes),
      };
    }
    return out;
  } finally {
    model.destroy();
    weights.destroy();
    sampler.destroy();
    penalty.destroy();
  }
}

/** A 128x128 RGBA picture: a red box on grey (what the tiny model was trained on). */
function boxImage(): ImageData {
  const w = 128;
  const h = 128;
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const box = x >= 30 && x < 90 && y >= 40 && y < 100;
      data.set(box ? [220, 30, 30, 255] : [200, 200, 200, 255], i);
    }
  }
  return new ImageData(data, w, h);
}

async function tinyScreens(
  copy: number,
  peakGflops: number,
  log: (line: string) => void,
  src: { url: string | null; mmproj?: string; fetch?: typeof fetch; openModel?: LoadOptions['openModel'] },
  answers: boolean,
) {
  if (!src.url) return { skipped: 'no URL for the embedded model in this runtime' };
  const l = await loadModel(src.mmproj ? { url: src.url, mmproj: src.mmproj } : { url: src.url, fetch: src.fetch, openModel: src.openModel });
  let out: Record<string, unknown>;
  try {
    const c = l.model.config;
    const size = sizeForImage(128, 128, { longestEdge: c.vision.imageSize, tokenPx: l.model.tokenPixels });
    const pixels = { pixels: new Float32Array(3 * size.height * size.width).fill(0.1), height: size.height, width: size.width };
    const turn = imageTurn(c, pixels, l.model.tokenPixels);
    const e2e = await timedTurn(l, turn, copy, peakGflops, log);
    const g = await gpuOnlyParts(l, midRunPosition(turn));
    out = {
      layersRun: c.text.numLayers,
      ...e2e,
      gpuOnly: g,
      encode: encodeCost(l, midRunPosition(turn)),
      dispatchesPerDecodeLayer: countLayerDispatches(l.gpu, l.model, turn.ids.length) / c.text.numLayers,
      peakGpuBytes: l.gpu.ledger.peakBytes,
      prefillMatmul: prefillMatmul(l.gpu),
      prefillAttention: defaultAttentionPrefillVariant(l.gpu, c.text.headDim),
    };
  } finally {
    releaseModel(l);
  }
  // The first answer after a fresh load against a later one: `Engine.chat`, whole.
  if (!answers || typeof ImageData === 'undefined') return out;
  const engine = new Engine();
  try {
    await engine.load({ url: src.url, fetch: src.fetch });
    const ask = async () => {
      const t0 = performance.now();
      await engine.chat([{ role: 'user', content: [{ type: 'image', image: boxImage() }, { type: 'text', text: 'What color is the box?' }] }], { maxTokens: 8 });
      return performance.now() - t0;
    };
    out.firstAnswerMs = await ask();
    await engine.reset();
    out.laterAnswerMs = await ask();
    log(`first answer ${(out.firstAnswerMs as number).toFixed(0)} ms, later ${(out.laterAnswerMs as number).toFixed(0)} ms`);
  } finally {
    await engine.dispose();
  }
  return out;
}

export async function run(gpu: Gpu, log: (line: string) => void = () => {}): Promise<object> {
  const copy = (await copyGBps(gpu)).GBps;
  log(`copy ${copy.toFixed(2)} GB/s`);
  const peak = await matmulPeak(gpu);
  log(`dense matmul peak ${peak.matmulPeakGflops.toFixed(1)} GFLOP/s`);
  const e2e: Record<string, unknown> = { copyGBps: copy, matmulPeakGflops: peak.matmulPeakGflops, minTokens: MIN_TOKENS };
  const only = e2eModels.only;
  const unknown = only?.filter((m) => !(MODELS as readonly string[]).includes(m));
  if (unknown?.length) throw new Error(`e2e: unknown model(s) ${unknown.join(', ')}; known: ${MODELS.join(', ')}`);
  const skipped = (m: string) => !only && gpu.isSoftware && NAMED_ONLY_SOFTWARE.includes(m);
  const want = (m: (typeof MODELS)[number]) => (only ? only.includes(m) : !skipped(m));
  if (want('tiny-screens')) {
    e2e['tiny-screens'] = await tinyScreens(copy, peak.matmulPeakGflops, log, tinyModelSource, true);
    log('tiny-screens done');
  }
  if (want('tiny-screens-gguf')) {
    e2e['tiny-screens-gguf'] = { format: 'GGUF Q4_0 (llama.cpp), Q8_0 lm_head', ...(await tinyScreens(copy, peak.matmulPeakGflops, log, tinyGgufSource, false)) };
    log('tiny-screens-gguf done');
  }
  if (want('pixtral-12b')) {
    // Vision weights on the host (what fits 9 GB), then resident for comparison.
    const host = await pixtral12b(gpu, copy, peak.matmulPeakGflops, log, 'host');
    const resident = await pixtral12b(gpu, copy, peak.matmulPeakGflops, log, 'gpu', 'q4', 'first-tokens');
    e2e['pixtral-12b'] = {
      ...host,
      visionOnGpu: {
        note: `the same turn with the vision layers resident (visionWeights: 'gpu'), ${FIRST_TOKENS} tokens generated`,
        ...resident,
      },
      // Host memory the 24 vision layers take in host mode, re-uploaded for every image encoded.
      visionHostBytes40Layers: PIXTRAL_12B_2409.vision.numLayers * visionLayerBytes(),
    };
    log('pixtral-12b done');
  }
  if (want('pixtral-12b-q4_k_m')) {
    e2e['pixtral-12b-q4_k_m'] = await pixtral12b(gpu, copy, peak.matmulPeakGflops, log, 'host', 'q4_k_m');
    log('pixtral-12b-q4_k_m done');
  }
  for (const m of MODELS.filter(skipped)) {
    e2e[m] = { skipped: `software adapter: run only when named (--models ${m})` };
    log(`${m} skipped on a software adapter (--models ${m} runs it)`);
  }
  return { e2e };
}

/** The q4 prefill kernel the model used, and the subgroup-matrix check's verdict. */
function prefillMatmul(gpu: Gpu): { variant: string; subgroupMatrix: string } {
  const v = subgroupMatrixVerdict(gpu);
  return {
    variant: defaultQ4MatMulVariant(gpu),
    subgroupMatrix: v?.shape
      ? `${describeShape(v.shape)}${v.isDefault ? '' : `: ${v.reason}`}`
      : `not used: ${v?.reason ?? 'not checked'}`,
  };
}
