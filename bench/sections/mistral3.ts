/**
 * Bench section `mistral3`: what the mistral3 family costs next to Pixtral-12B on this device.
 *
 * - Decode: the real `Decoder` (q4 linears, RMSNorm, YaRN/Llama-4 RoPE, GQA decode attention over
 *   `ctx` cached rows, f32 KV as allocated today) at each preset's REAL layer shape with synthetic
 *   q4 weights, but only `layers` layers (default 2): per-layer ms x the real layer count + the
 *   final norm and lm_head gives ms per token. Two layers of even the smallest shape (3B: 65 MB
 *   of q4 per layer) exceed an H100's 50 MB L2, so the timed loop reads weights from memory as a
 *   real decode does. `bytesPerToken` (src/presets.ts) over the ms gives the effective GB/s and
 *   its fraction of the copy kernel (the bandwidth yardstick).
 * - Image encode: one 1024x1024 screenshot through the vision encoder (synthetic f16 weights,
 *   `layers` layers, extrapolated to the real 24) and the projector, at Pixtral-12B's ViT
 *   (patch 16: 64x64 = 4096 patches) and the mistral3 ViT (patch 14, 1036x1036: 74x74 = 5476
 *   patches -> 37x37 merged tokens after the 2x2 merger). Skipped on software adapters.
 *
 * Weights are synthetic: timings only, never numerics.
 */
import type { Gpu } from '../../src/gpu/device.js';
import type { Ctx } from '../../src/gpu/kernel.js';
import { Tensor, writeBuffer } from '../../src/gpu/tensor.js';
import type { ModelConfig, TextConfig, VisionConfig } from '../../src/config.js';
import { asMatWeight } from '../../src/kernels/matmul.js';
import { destroyQ4 } from '../../src/kernels/q4.js';
import { Decoder, type DecoderWeights } from '../../src/model/decoder.js';
import { KvCache } from '../../src/model/kv-cache.js';
import type { Linear } from '../../src/model/linear.js';
import { VisionEncoder, type VisionWeights } from '../../src/model/vision.js';
import { Projector, type ProjectorWeights } from '../../src/model/projector.js';
import { sizeForImage } from '../../src/image/size.js';
import { tokenPixels } from '../../src/config.js';
import { PRESETS, bytesPerToken, type Preset } from '../../src/presets.js';
import { uploadSynthQ4 } from '../../test/kernels/ref/q4.js';
import { copyGBps, isSoftware, timeDispatches, type TimingMethod } from './timing.js';

export interface Mistral3BenchOptions {
  /** Layers actually built and timed per shape (default 2; 1 on software adapters). */
  layers?: number;
  /** Cached positions the decode step attends over (default 4096). */
  ctx?: number;
  /** Preset ids to time (default Pixtral-12B, Ministral-3 3B and 8B). */
  presets?: string[];
  /** Time the image encoders too (default: not on software adapters). */
  image?: boolean;
  /** Side of the square test image in pixels (default 1024, a screenshot). */
  imageSide?: number;
}

export interface DecodeResult {
  preset: string;
  layersTimed: number;
  realLayers: number;
  msPerLayer: number;
  msHead: number;
  msPerToken: number;
  tokensPerSec: number;
  bytesPerToken: number;
  GBps: number;
  fractionOfCopy: number;
  ctx: number;
  timing: TimingMethod;
}

export interface ImageResult {
  preset: string;
  image: string;
  patches: number;
  imageTokens: number;
  layersTimed: number;
  msPerLayer: number;
  msProjector: number;
  /** msPerLayer x real layers + projector (patch embedding and upload not included). */
  msEncode: number;
  timing: TimingMethod;
}

const q4Linear = (gpu: Gpu, name: string, out: number, inF: number, seed: number): Linear => ({
  name, outFeatures: out, inFeatures: inF, weight: { kind: 'q4', w: uploadSynthQ4(gpu, out, inF, seed, name) },
});

/** A dense f16 [out, in] weight filled with a repeated small pseudo-random pattern. */
function f16Linear(gpu: Gpu, name: string, out: number, inF: number, tensors: Tensor[]): Linear {
  const t = Tensor.empty(gpu, [out, inF], 'f16', name);
  const chunk = new Uint16Array(1 << 16);
  for (let i = 0; i < chunk.length; i++) chunk[i] = 0x2000 + ((i * 2654435761) >>> 22); // |w| ~ 2^-7 .. 2^-6
  const n = out * inF;
  for (let off = 0; off < n; off += chunk.length) writeBuffer(gpu, t.buffer, off * 2, chunk.subarray(0, Math.min(chunk.length, n - off)));
  tensors.push(t);
  return { name, outFeatures: out, inFeatures: inF, weight: { kind: 'dense', w: asMatWeight(t) } };
}

const ones = (gpu: Gpu, n: number, tensors: Tensor[]): Tensor => {
  const t = Tensor.from(gpu, new Float32Array(n).fill(1), [n], 'f32', 'bench.norm');
  tensors.push(t);
  return t;
};

async function timeDecode(gpu: Gpu, p: Preset, layers: number, ctx: number): Promise<DecodeResult> {
  const real = p.config.text;
  const c: TextConfig = { ...real, numLayers: layers };
  const D = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const tensors: Tensor[] = [];
  const linears: Linear[] = [];
  const L = (name: string, out: number, inF: number) => {
    const l = q4Linear(gpu, `bench.${p.id}.${name}`, out, inF, linears.length + 1);
    linears.push(l);
    return l;
  };
  const weights: DecoderWeights = {
    embed: { dtype: 'q4', rows: c.vocabSize, cols: D, parts: [] }, // not used: no token is embedded
    layers: Array.from({ length: layers }, (_, i) => ({
      inputNorm: ones(gpu, D, tensors),
      q: L(`${i}.q`, q, D),
      k: L(`${i}.k`, kv, D),
      v: L(`${i}.v`, kv, D),
      o: L(`${i}.o`, D, q),
      postNorm: ones(gpu, D, tensors),
      gate: L(`${i}.gate`, c.intermediateSize, D),
      up: L(`${i}.up`, c.intermediateSize, D),
      down: L(`${i}.down`, D, c.intermediateSize),
    })),
    norm: ones(gpu, D, tensors),
    lmHead: L('lm_head', c.vocabSize, D),
  };
  const decoder = new Decoder(gpu, c, weights, 1, ctx + 1);
  const cache = new KvCache(gpu, c, ctx + 1);
  try {
    const body = (x: Ctx) => decoder.layers(x, 1, ctx, cache);
    const tl = await timeDispatches(gpu, `decode.${p.id}.layers`, body);
    const th = await timeDispatches(gpu, `decode.${p.id}.head`, (x) => {
      decoder.finalNorm(x, 1);
      decoder.lastLogits(x);
    });
    const copy = await copyGBps(gpu, true);
    const msPerLayer = tl.ms / layers;
    const msPerToken = msPerLayer * real.numLayers + th.ms;
    const bytes = bytesPerToken(p.config, ctx, 'f32');
    const GBps = bytes / msPerToken / 1e6;
    return {
      preset: p.name, layersTimed: layers, realLayers: real.numLayers, msPerLayer, msHead: th.ms, msPerToken,
      tokensPerSec: 1000 / msPerToken, bytesPerToken: bytes, GBps, fractionOfCopy: GBps / copy.GBps, ctx, timing: tl.method,
    };
  } finally {
    decoder.destroy();
    cache.destroy();
    for (const l of linears) if (l.weight.kind === 'q4') destroyQ4(l.weight.w);
    for (const t of tensors) t.destroy();
  }
}

async function timeImage(gpu: Gpu, p: Preset, layers: number, side: number): Promise<ImageResult> {
  const cfg: ModelConfig = p.config;
  const v: VisionConfig = { ...cfg.vision, numLayers: layers };
  const size = sizeForImage(side, side, { longestEdge: v.imageSize, tokenPx: tokenPixels(cfg) });
  const P = (size.height / v.patchSize) * (size.width / v.patchSize);
  const D = v.hiddenSize;
  const I = v.intermediateSize;
  const Dt = cfg.text.hiddenSize;
  const tensors: Tensor[] = [];
  const F = (name: string, out: number, inF: number) => f16Linear(gpu, `bench.vit.${name}`, out, inF, tensors);
  const vw: VisionWeights = {
    patchConv: F('patch_conv', D, v.numChannels * v.patchSize * v.patchSize),
    lnPre: ones(gpu, D, tensors),
    layers: Array.from({ length: layers }, (_, i) => ({
      attentionNorm: ones(gpu, D, tensors),
      q: F(`${i}.q`, D, D), k: F(`${i}.k`, D, D), v: F(`${i}.v`, D, D), o: F(`${i}.o`, D, D),
      ffnNorm: ones(gpu, D, tensors),
      gate: F(`${i}.gate`, I, D), up: F(`${i}.up`, I, D), down: F(`${i}.down`, D, I),
    })),
  };
  const merge = cfg.projector.spatialMergeSize;
  const pw: ProjectorWeights = {
    merger: merge > 1 ? { norm: ones(gpu, D, tensors), merging: F('merging', D, merge * merge * D) } : undefined,
    linear1: F('linear_1', Dt, D),
    linear2: F('linear_2', Dt, Dt),
  };
  const enc = new VisionEncoder(gpu, v, vw, P);
  const proj = new Projector(gpu, cfg, pw, P);
  try {
    const pixels = new Float32Array(v.numChannels * size.height * size.width).fill(0.1);
    let e!: ReturnType<VisionEncoder['embed']>;
    await timeDispatches(gpu, 'vit.embed', (x) => (e = enc.embed(x, [{ pixels, height: size.height, width: size.width }])), { repeats: 1, maxIters: 1 });
    const tl = await timeDispatches(gpu, `vit.${p.id}.layers`, (x) => enc.transformer(x, P));
    const tp = await timeDispatches(gpu, `vit.${p.id}.projector`, (x) => proj.project(x, e.out, P, e.grids));
    const msPerLayer = tl.ms / layers;
    return {
      preset: p.name, image: `${side}x${side} -> ${size.width}x${size.height}`, patches: P, imageTokens: size.tokens, layersTimed: layers,
      msPerLayer, msProjector: tp.ms, msEncode: msPerLayer * cfg.vision.numLayers + tp.ms, timing: tl.method,
    };
  } finally {
    enc.destroy();
    proj.destroy();
    for (const t of tensors) t.destroy();
  }
}

export async function run(gpu: Gpu, opts: Mistral3BenchOptions = {}): Promise<object> {
  const soft = isSoftware(gpu);
  const layers = opts.layers ?? (soft ? 1 : 2);
  const ctx = opts.ctx ?? 4096;
  const ids = opts.presets ?? ['pixtral-12b-2409', 'ministral-3-3b', 'ministral-3-8b'];
  const presets = ids.map((id) => {
    const p = PRESETS.find((x) => x.id === id);
    if (!p) throw new Error(`unknown preset ${id}`);
    return p;
  });
  const decode: DecodeResult[] = [];
  for (const p of presets) decode.push(await timeDecode(gpu, p, layers, ctx));
  const image: ImageResult[] = [];
  if (opts.image ?? !soft) {
    for (const id of ['pixtral-12b-2409', 'ministral-3-8b']) image.push(await timeImage(gpu, PRESETS.find((x) => x.id === id)!, layers, opts.imageSide ?? 1024));
  }
  const copy = await copyGBps(gpu);
  for (const r of decode) r.fractionOfCopy = r.GBps / copy.GBps;
  return { mistral3: { decode, image, copyGBps: copy.GBps, note: `${layers} real-shape layers timed per model, extrapolated to the real layer count` } };
}
