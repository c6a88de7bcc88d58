/**
 * Matches an opened checkpoint against the tensors its config implies, before anything is
 * written: every expected tensor must be present (under its source name), with the expected
 * shape and a readable dtype. Source tensors the model does not use are reported, not converted.
 */
import type { ModelConfig } from '../src/config.js';
import { FormatError } from '../src/errors.js';
import { expectedTensors, type ExpectedTensor } from '../src/weights/tensor-set.js';
import { canonicalName, type LayoutKind } from './layouts.js';
import { SOURCE_DTYPES, type Checkpoint, type SourceDType, type SourceTensor } from './safetensors.js';

export interface PlannedTensor {
  expected: ExpectedTensor;
  source: SourceTensor & { dtype: SourceDType };
  /** Native q/k rows must be reordered for rotate-half RoPE. */
  permuteRope: boolean;
}

export interface ConversionPlan {
  tensors: PlannedTensor[];
  /** Source tensors that map to nothing the model uses. */
  unused: string[];
  /** Sum of the source bytes to read. */
  totalBytes: number;
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

export function planConversion(config: ModelConfig, layout: LayoutKind, ckpt: Checkpoint): ConversionPlan {
  const byCanonical = new Map<string, SourceTensor>();
  const unused: string[] = [];
  for (const [name, t] of ckpt.tensors) {
    const c = canonicalName(layout, name);
    if (c === undefined) {
      unused.push(name);
      continue;
    }
    const prev = byCanonical.get(c);
    if (prev) throw new FormatError(`tensors "${prev.name}" and "${name}" both map to "${c}"`);
    byCanonical.set(c, t);
  }
  const expected = expectedTensors(config);
  const wanted = new Set(expected.map((e) => e.name));
  for (const [c, t] of byCanonical) if (!wanted.has(c)) unused.push(t.name);

  const missing = expected.filter((e) => !e.optional && !byCanonical.has(e.name)).map((e) => e.name);
  if (missing.length) {
    const more = missing.length > 3 ? ` (+${missing.length - 3} more)` : '';
    throw new FormatError(
      `missing tensor${missing.length > 1 ? 's' : ''} ${missing.slice(0, 3).map((n) => `"${n}"`).join(', ')}${more} ` +
        `(required by the ${config.modelType} config, canonical names; ${layout} layout)`,
    );
  }

  const tensors: PlannedTensor[] = [];
  let totalBytes = 0;
  for (const e of expected) {
    const s = byCanonical.get(e.name);
    if (!s) continue; // optional and absent
    const shown = s.name === e.name ? `"${e.name}"` : `"${e.name}" (source "${s.name}")`;
    if (s.shape.length !== e.shape.length || s.shape.some((d, i) => d !== e.shape[i])) {
      throw new FormatError(`tensor ${shown}: shape mismatch: expected ${fmt(e.shape)} from the config, got ${fmt(s.shape)}`);
    }
    if (!(SOURCE_DTYPES as readonly string[]).includes(s.dtype)) {
      throw new FormatError(`tensor ${shown}: dtype ${s.dtype} is not supported (supported: ${SOURCE_DTYPES.join(', ')})`);
    }
    const permuteRope = layout === 'native' && e.rope !== undefined;
    tensors.push({ expected: e, source: s as PlannedTensor['source'], permuteRope });
    totalBytes += s.byteLength;
  }
  return { tensors, unused: unused.sort(), totalBytes };
}
