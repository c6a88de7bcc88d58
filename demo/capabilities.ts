/**
 * Capability checks, run before anything can break: is WebGPU there (and what to do if not),
 * what `shader-f16` changes on this adapter (today: nothing; the engine runs f32 activations on
 * every adapter and reads f16 weights and the f16 KV cache as packed words), and is the chosen
 * model with the chosen context likely to fit (an estimate from the model's manifest against
 * the adapter's `maxBufferSize` / `maxStorageBufferBindingSize`; WebGPU does not report the
 * GPU's memory size, so this is an estimate and says so).
 *
 * The adapter is requested here on the main thread only to read its features and limits; the
 * library's worker requests its own device.
 */
import { formatBytes } from './format.js';

export type Level = 'error' | 'warn' | 'info';

export interface Message {
  level: Level;
  text: string;
}

export interface AdapterSummary {
  description: string;
  f16: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  fallback: boolean;
}

export interface Capabilities {
  webgpu: boolean;
  adapter: AdapterSummary | null;
  messages: Message[];
}

/** What the manifest says about a model, enough for a memory estimate. */
export interface ModelFacts {
  name: string;
  dtype: string;
  /** The KV-cache type the loader will pick, where the dtype alone does not say (a GGUF pair). */
  kvCache?: 'f16' | 'f32';
  /** Bytes of all weight shards (about the GPU weight bytes). */
  weightBytes: number;
  /** Largest single tensor in bytes (data + scales). */
  largestTensorBytes: number;
  layers: number;
  kvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  visionHidden: number;
  maxPatches: number;
}

export interface MemoryEstimate {
  weights: number;
  kvCache: number;
  activations: number;
  total: number;
}

/** Checks WebGPU and the adapter; never throws. */
export async function checkCapabilities(): Promise<Capabilities> {
  const messages: Message[] = [];
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) {
    messages.push({
      level: 'error',
      text:
        'This browser has no WebGPU, so the model cannot run here. Use a recent desktop Chrome or Edge (113 or newer), ' +
        'or Chromium started with --enable-unsafe-webgpu; in Firefox and Safari, WebGPU may need to be enabled in the settings. ' +
        (window.isSecureContext ? '' : 'WebGPU also needs a secure page (https:// or localhost). '),
    });
    return { webgpu: false, adapter: null, messages };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    adapter = null;
  }
  if (!adapter) {
    messages.push({
      level: 'error',
      text:
        'WebGPU is present but gave no GPU adapter (the GPU may be blocklisted or hardware acceleration switched off). ' +
        'Turn on hardware acceleration in the browser settings, update the GPU driver, or try another browser.',
    });
    return { webgpu: true, adapter: null, messages };
  }
  const info = adapter.info;
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /swiftshader/i.test(`${info.description} ${info.architecture} ${info.vendor}`);
  const summary: AdapterSummary = {
    description: [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter',
    f16: adapter.features.has('shader-f16'),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    fallback,
  };
  messages.push({ level: 'info', text: `WebGPU adapter: ${summary.description}.` });
  if (fallback) {
    messages.push({
      level: 'warn',
      text: 'This is a software (CPU) WebGPU adapter: everything works, but slowly. The small embedded model answers in seconds; a 12B model is impractical here.',
    });
  }
  messages.push({ level: 'info', text: shaderF16Text(summary.f16) });
  return { webgpu: true, adapter: summary, messages };
}

/**
 * What shader-f16 changes here, truthfully: today the model computes with f32 activations on
 * every adapter, and f16 weights and the f16 KV cache are stored as packed halves read as 32-bit
 * words, so neither speed, memory nor answers depend on it. (Update when f16 kernels land.)
 */
export function shaderF16Text(f16: boolean): string {
  return (
    `${f16 ? 'The adapter has shader-f16, which this version does not use yet' : 'The adapter has no shader-f16, and that changes nothing here'}: ` +
    'the model runs f32 activations on every adapter and reads f16 weights and the f16 KV cache as packed words, so memory, speed and answers are the same either way.'
  );
}

/** The KV-cache element type the library picks for a model stored as `dtype` (its default). */
export function defaultKvCache(dtype: string): 'f16' | 'f32' {
  return dtype === 'q4' ? 'f16' : 'f32';
}

interface ManifestLike {
  name?: unknown;
  dtype?: unknown;
  totalBytes?: unknown;
  config?: {
    vision?: { hiddenSize?: number; imageSize?: number; patchSize?: number };
    text?: { numLayers?: number; numKvHeads?: number; headDim?: number; maxPositionEmbeddings?: number };
  };
  tensors?: { data?: { byteLength?: number }[]; quant?: { scales?: { byteLength?: number }[] } }[];
}

/** Pulls the numbers of the estimate out of a parsed manifest.json; null if it does not look like one. */
export function modelFacts(manifest: unknown): ModelFacts | null {
  const m = manifest as ManifestLike;
  const t = m?.config?.text;
  const v = m?.config?.vision;
  if (!t || !v || typeof m.totalBytes !== 'number') return null;
  const sum = (segs: { byteLength?: number }[] | undefined) => (segs ?? []).reduce((a, s) => a + (s.byteLength ?? 0), 0);
  let largest = 0;
  for (const tensor of m.tensors ?? []) largest = Math.max(largest, sum(tensor.data) + sum(tensor.quant?.scales));
  const side = Math.floor((v.imageSize ?? 1024) / (v.patchSize ?? 16));
  return {
    name: String(m.name ?? 'model'),
    dtype: String(m.dtype ?? '?'),
    weightBytes: m.totalBytes,
    largestTensorBytes: largest,
    layers: t.numLayers ?? 0,
    kvHeads: t.numKvHeads ?? 0,
    headDim: t.headDim ?? 0,
    maxPositionEmbeddings: t.maxPositionEmbeddings ?? 0,
    visionHidden: v.hiddenSize ?? 0,
    maxPatches: side * side,
  };
}

/**
 * GPU memory the model needs with `maxContext` tokens: weights, the KV cache (K and V, every
 * layer; 2 bytes per value when it is stored as f16, which the library does by default for q4
 * models on every adapter, else 4) and a working-set allowance for the vision encoder's
 * activations at the largest image (about a dozen hidden-size buffers per patch).
 */
export function estimateMemory(f: ModelFacts, maxContext: number, kvType: 'f16' | 'f32' = f.kvCache ?? defaultKvCache(f.dtype)): MemoryEstimate {
  const bytes = kvType === 'f16' ? 2 : 4;
  const kvCache = 2 * f.layers * f.kvHeads * f.headDim * maxContext * bytes;
  const activations = f.maxPatches * f.visionHidden * 4 * 12;
  const weights = f.weightBytes;
  return { weights, kvCache, activations, total: weights + kvCache + activations };
}

/** Honest words about whether `f` with `maxContext` fits this adapter. */
export function memoryMessages(f: ModelFacts, maxContext: number, adapter: AdapterSummary | null): Message[] {
  const out: Message[] = [];
  if (!adapter) return out;
  const est = estimateMemory(f, maxContext);
  const kvPerLayer = est.kvCache / Math.max(1, 2 * f.layers);
  const summary =
    `${f.name} (${f.dtype}) with a ${maxContext}-token context needs about ${formatBytes(est.total)} of GPU memory ` +
    `(weights ${formatBytes(est.weights)}, KV cache ${formatBytes(est.kvCache)}, working set ${formatBytes(est.activations)}).`;
  if (maxContext > f.maxPositionEmbeddings && f.maxPositionEmbeddings > 0) {
    out.push({ level: 'warn', text: `The model was trained for at most ${f.maxPositionEmbeddings} tokens; the context will be capped there.` });
  }
  if (kvPerLayer > adapter.maxBufferSize) {
    out.push({
      level: 'error',
      text: `${summary} One KV-cache buffer (${formatBytes(kvPerLayer)}) exceeds this adapter's maxBufferSize (${formatBytes(adapter.maxBufferSize)}): choose a shorter context.`,
    });
    return out;
  }
  // WebGPU does not say how much memory the GPU has. navigator.deviceMemory (capped at 8 GB by
  // browsers) is a rough floor of system memory: integrated GPUs share it.
  const deviceMemory = typeof navigator === 'undefined' ? undefined : (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  const hint = deviceMemory ? deviceMemory * 1e9 : null;
  if (est.total > 2e9 && hint !== null && est.total > hint) {
    out.push({
      level: 'warn',
      text:
        `${summary} This device reports about ${deviceMemory} GB of memory, less than that: loading will likely fail with an out-of-memory error ` +
        `(WebGPU does not reveal GPU memory, so this is an estimate). Use a machine with a discrete GPU (12 GB or more for Pixtral-12B q4), or a shorter context.`,
    });
  } else {
    out.push({
      level: 'info',
      text: `${summary} Largest buffer allowed: ${formatBytes(adapter.maxBufferSize)}; largest binding: ${formatBytes(adapter.maxStorageBufferBindingSize)} (bigger tensors are split).`,
    });
  }
  return out;
}
