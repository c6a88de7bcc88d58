/**
 * Which stored dtype each tensor gets for a given `--dtype`.
 *
 * q4: the decoder's linear weights (q/k/v/o, gate/up/down), lm_head AND the embedding table are
 *   quantised to q4g32. The last two matter most: for Nemo (Pixtral-12B) each is 131072 x 5120 =
 *   671M parameters, 2.7 GB for the pair in f16 against 0.75 GB in q4, and one f16 embedding
 *   (1.34 GB) would not even fit a single 1 GiB storage buffer. A matrix whose K (columns) is not
 *   a multiple of 32 cannot be q4g32 and falls back to f16 with a warning. The vision encoder and
 *   projector (~0.4B parameters, run once per image, sensitive to error) stay f16
 *   (`--vision-dtype f32` keeps them f32).
 * f16: everything f16.   f32: everything f32.
 * In every mode the 1-D tensors (RMSNorm weights, projector biases) stay f32: they are tiny, and
 *   norm weights in particular are applied in f32 by every kernel.
 */
import { q4Supported } from '../src/quant/q4.js';
import type { StoredDType } from '../src/weights/manifest.js';
import type { ExpectedTensor } from '../src/weights/tensor-set.js';

export type VisionDType = 'f16' | 'f32';

export interface DTypeChoice {
  dtype: StoredDType;
  warning?: string;
}

export function chooseDType(t: ExpectedTensor, dtype: StoredDType, visionDtype: VisionDType): DTypeChoice {
  if (t.role === 'norm' || t.role === 'bias' || dtype === 'f32') return { dtype: 'f32' };
  if (t.role === 'vision') return { dtype: visionDtype };
  if (dtype === 'f16') return { dtype: 'f16' };
  const cols = t.shape.slice(1).reduce((a, d) => a * d, 1);
  if (t.shape.length !== 2 || !q4Supported(cols)) {
    return { dtype: 'f16', warning: `${t.name}: K=${cols} is not a multiple of 32, stored as f16 instead of q4` };
  }
  return { dtype: 'q4' };
}
