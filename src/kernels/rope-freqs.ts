/**
 * RoPE frequencies on the CPU, in float64: the plain `theta^(-2i/d)` inverse frequencies, the
 * YaRN ones (ministral3 / mistral3 `rope_parameters`), the YaRN attention factor that multiplies
 * cos and sin, and the Llama-4 position-dependent query scale. No GPU here: the rope kernel takes
 * these vectors (through `buildRopeTable` in `rope.ts`), so any frequency rule computed on the CPU
 * works without a new shader.
 *
 * Formulas: Hugging Face `_compute_default_rope_parameters` / `_compute_yarn_parameters`, as
 * written out in the mistral3 section of the fixtures README.
 */

/** inv_freq[i] = theta^(-2i/d), i = 0..d/2-1, float64. */
export function ropeInvFreq(headDim: number, theta: number): Float64Array {
  if (headDim % 2 !== 0 || headDim <= 0) throw new RangeError(`head_dim ${headDim} must be even and positive`);
  const half = headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = Math.pow(theta, (-2 * i) / headDim);
  return out;
}

export interface YarnParams {
  headDim: number;
  theta: number;
  factor: number;
  originalMaxPositionEmbeddings: number;
  betaFast: number;
  betaSlow: number;
}

/** YaRN's correction dimension: the (fractional) index whose wavelength spans `orig/numRot` turns. */
function correctionDim(numRotations: number, headDim: number, theta: number, orig: number): number {
  return (headDim * Math.log(orig / (numRotations * 2 * Math.PI))) / (2 * Math.log(theta));
}

/** The YaRN blend range [low, high] over the d/2 frequency indices (HF's `truncate=True`). */
export function yarnCorrectionRange(p: YarnParams): { low: number; high: number } {
  const low = Math.max(Math.floor(correctionDim(p.betaFast, p.headDim, p.theta, p.originalMaxPositionEmbeddings)), 0);
  const high = Math.min(Math.ceil(correctionDim(p.betaSlow, p.headDim, p.theta, p.originalMaxPositionEmbeddings)), p.headDim - 1);
  return { low, high };
}

/**
 * YaRN inverse frequencies: theta^(-2i/d) * (extrap[i] + (1 - extrap[i]) / factor) where
 * extrap = 1 - clamp((i - low) / (high - low), 0, 1). High frequencies (i < low) are kept,
 * low ones (i > high) are interpolated by `factor`.
 */
export function yarnInvFreq(p: YarnParams): Float64Array {
  const base = ropeInvFreq(p.headDim, p.theta);
  const { low, high: h } = yarnCorrectionRange(p);
  const high = h === low ? h + 0.001 : h; // HF's guard against a zero-width ramp
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1);
    const extrap = 1 - ramp;
    out[i] = base[i]! * (extrap + (1 - extrap) / p.factor);
  }
  return out;
}

/** g(f, m) = 1 + 0.1 m ln f for f > 1, else 1. */
function yarnGetMscale(factor: number, mscale = 1): number {
  return factor <= 1 ? 1 : 0.1 * mscale * Math.log(factor) + 1;
}

/**
 * YaRN attention factor (multiplies both cos and sin, so q.k scales by its square):
 * g(f, mscale) / g(f, mscale_all_dim) when both are nonzero, else g(f, 1).
 */
export function yarnAttentionFactor(factor: number, mscale: number, mscaleAllDim: number): number {
  if (mscale && mscaleAllDim) return yarnGetMscale(factor, mscale) / yarnGetMscale(factor, mscaleAllDim);
  return yarnGetMscale(factor);
}

/** Llama-4 query scale at absolute position `pos`: 1 + beta * ln(1 + floor(pos / orig)). */
export function llama4QueryScale(pos: number, beta: number, orig: number): number {
  return 1 + beta * Math.log(1 + Math.floor(pos / orig));
}

/**
 * Pixtral-ViT 2D RoPE frequencies: freqs = theta^(-2i/d), i = 0..d/2-1; rows use the even-index
 * ones (freqs[0::2], d/4 values) and columns the odd-index ones (freqs[1::2]). Per patch the d/2
 * angles are concat(row * fh, col * fw), then used for both halves (rotate-half layout).
 */
export function visionRopeFreqs(headDim: number, theta: number): { fh: Float64Array; fw: Float64Array } {
  if (headDim % 4 !== 0) throw new RangeError(`vision head_dim ${headDim} must be a multiple of 4`);
  const f = ropeInvFreq(headDim, theta);
  const q = headDim / 4;
  const fh = new Float64Array(q);
  const fw = new Float64Array(q);
  for (let i = 0; i < q; i++) {
    fh[i] = f[2 * i]!;
    fw[i] = f[2 * i + 1]!;
  }
  return { fh, fw };
}
