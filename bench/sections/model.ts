/**
 * Bench section `model`: end-to-end figures with random weights generated on the GPU
 * (src/model/random-weights.ts), through the same VisionEncoder / Projector / Decoder code the
 * library runs:
 *  - image-encode ms at the full Pixtral-ViT shape for a 1024x1024 image (64x64 patches) and a
 *    1600x400 screenshot (resized to 1024x256: 64x16 patches), f16 weights;
 *  - prefill and decode tokens/s of a Pixtral-12B-shaped decoder (q4), run with `layers` layers,
 *    reported per layer and extrapolated to the real 40;
 *  - decode time per token against its bandwidth limit: weight bytes read per token / the copy
 *    bandwidth measured in the same run;
 *  - the same for the tiny demo model's shapes (pixtral-tiny-screens).
 * On software adapters fewer layers, a shorter prompt and only the screenshot run, once each;
 * the result says how many layers ran and extrapolates.
 */
import type { Gpu } from '../../src/gpu/device.js';
import { PIXTRAL_12B_2409, type ModelConfig } from '../../src/config.js';
import { RandomWeights } from '../../src/model/random-weights.js';
import { VisionEncoder, loadVisionWeights } from '../../src/model/vision.js';
import { Decoder, loadDecoderWeights } from '../../src/model/decoder.js';
import { KvCache } from '../../src/model/kv-cache.js';
import { linearBytes } from '../../src/model/linear.js';
import { sizeForImage } from '../../src/image/size.js';
import { copyGBps, isSoftware, timeDispatches } from './timing.js';

export interface ModelBenchOptions {
  /** Decoder layers actually run (default: 40 on GPUs, 2 on software adapters). */
  layers?: number;
  /** Vision layers actually run (default: 24 on GPUs, 1 on software adapters). */
  visionLayers?: number;
}

const TINY_SCREENS: ModelConfig = {
  ...PIXTRAL_12B_2409,
  vision: { ...PIXTRAL_12B_2409.vision, hiddenSize: 96, numLayers: 3, numHeads: 4, headDim: 24, intermediateSize: 256, imageSize: 128 },
  text: { ...PIXTRAL_12B_2409.text, hiddenSize: 128, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 48, intermediateSize: 384, vocabSize: 2048, maxPositionEmbeddings: 4096 },
};

function withLayers(c: ModelConfig, text: number, vision: number): ModelConfig {
  return { ...c, text: { ...c.text, numLayers: text }, vision: { ...c.vision, numLayers: vision } };
}

/** Heavy workloads run once on software adapters (minutes per iteration there), best of 2 elsewhere. */
function heavy(gpu: Gpu) {
  return isSoftware(gpu) ? { maxIters: 1, repeats: 1 } : { maxIters: 3, repeats: 2 };
}

async function visionBench(gpu: Gpu, c: ModelConfig, w: RandomWeights, images: { h: number; w: number; label: string }[]) {
  const out = [];
  for (const im of images) {
    const size = sizeForImage(im.h, im.w, { longestEdge: c.vision.imageSize, tokenPx: c.vision.patchSize });
    const P = size.rows * size.cols;
    const enc = new VisionEncoder(gpu, c.vision, loadVisionWeights(w, c.vision), P);
    const pixels = new Float32Array(3 * size.height * size.width).fill(0.1);
    const image = { pixels, height: size.height, width: size.width };
    try {
      const t = await timeDispatches(gpu, `vision ${im.label}`, (ctx) => enc.encode(ctx, [image]), heavy(gpu));
      out.push({ image: im.label, resized: `${size.width}x${size.height}`, patches: P, layersRun: c.vision.numLayers, ms: t.ms, msPerLayer: t.ms / c.vision.numLayers });
    } finally {
      enc.destroy();
    }
  }
  return out;
}

async function decoderBench(gpu: Gpu, c: ModelConfig, w: RandomWeights, realLayers: number, copy: number, prefillTokens: number) {
  const maxContext = Math.max(prefillTokens + 64, 256);
  const weights = loadDecoderWeights(w, c.text);
  const dec = new Decoder(gpu, c.text, weights, prefillTokens, maxContext);
  const cache = new KvCache(gpu, c.text, maxContext);
  try {
    const ids = Uint32Array.from({ length: prefillTokens }, (_, i) => (i * 7919) % c.text.vocabSize);
    const prefill = await timeDispatches(gpu, 'prefill', (ctx) => {
      dec.embedTokens(ctx, ids);
      dec.layers(ctx, prefillTokens, 0, cache);
    }, heavy(gpu));
    // Decode at position prefillTokens: the layers read every weight once; lm_head once.
    const one = Uint32Array.of(1);
    const layerStep = await timeDispatches(gpu, 'decode', (ctx) => {
      dec.embedTokens(ctx, one);
      dec.layers(ctx, 1, prefillTokens, cache);
    });
    const head = await timeDispatches(gpu, 'lm_head', (ctx) => dec.lastLogits(ctx));
    const layerBytes = weights.layers.reduce((a, l) => a + [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce((b, x) => b + linearBytes(x), 0), 0) / c.text.numLayers;
    const headBytes = linearBytes(weights.lmHead);
    const perLayerMs = layerStep.ms / c.text.numLayers;
    const tokenMs = perLayerMs * realLayers + head.ms;
    const tokenBytes = layerBytes * realLayers + headBytes;
    const limitMs = tokenBytes / (copy * 1e6);
    return {
      layersRun: c.text.numLayers,
      realLayers,
      prefill: { tokens: prefillTokens, msPerLayer: prefill.ms / c.text.numLayers, tokensPerSecondExtrapolated: prefillTokens / ((prefill.ms / c.text.numLayers) * realLayers / 1000) },
      decode: {
        msPerLayer: perLayerMs,
        lmHeadMs: head.ms,
        msPerTokenExtrapolated: tokenMs,
        tokensPerSecondExtrapolated: 1000 / tokenMs,
        weightBytesPerToken: tokenBytes,
        bandwidthLimitMs: limitMs,
        fractionOfBandwidthLimit: limitMs / tokenMs,
      },
    };
  } finally {
    dec.destroy();
    cache.destroy();
  }
}

export async function run(gpu: Gpu, opts: ModelBenchOptions = {}): Promise<object> {
  const soft = isSoftware(gpu);
  const layers = opts.layers ?? (soft ? 2 : 40);
  const visionLayers = opts.visionLayers ?? (soft ? 1 : 24);
  const copy = (await copyGBps(gpu)).GBps;
  const result: Record<string, unknown> = { modelBench: { layers, visionLayers, copyGBps: copy } };

  const tiny = new RandomWeights(gpu, TINY_SCREENS, { decoder: 'q4' });
  try {
    result.tinyScreens = {
      vision: await visionBench(gpu, TINY_SCREENS, tiny, [{ h: 128, w: 128, label: '128x128' }]),
      decoder: await decoderBench(gpu, TINY_SCREENS, tiny, TINY_SCREENS.text.numLayers, copy, 64),
    };
  } finally {
    tiny.destroy();
  }

  const cfg = withLayers(PIXTRAL_12B_2409, layers, visionLayers);
  const w = new RandomWeights(gpu, cfg, { decoder: 'q4' });
  try {
    // On software adapters the 4096-patch image alone takes many minutes: only the screenshot runs.
    const images = [{ h: 400, w: 1600, label: '1600x400' }];
    if (!soft) images.unshift({ h: 1024, w: 1024, label: '1024x1024' });
    const vision = await visionBench(gpu, cfg, w, images);
    result.pixtral12b = {
      vision: vision.map((v) => ({ ...v, msExtrapolated24Layers: v.msPerLayer * PIXTRAL_12B_2409.vision.numLayers })),
      decoder: await decoderBench(gpu, cfg, w, PIXTRAL_12B_2409.text.numLayers, copy, soft ? 8 : 256),
      randomWeightBytes: w.bytes,
    };
  } finally {
    w.destroy();
  }
  return result;
}
