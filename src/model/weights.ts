/**
 * Read-only model weights by checkpoint key. The loader (`src/weights/upload.ts`) puts every
 * tensor of a converted model on the GPU under its canonical Hugging Face name; model code asks
 * for them through module paths (`path('vision_tower').pp('transformer.layers').pp(i)`), so the
 * keys are spelled by the code that uses them and no rename table exists at run time.
 */
import { FormatError } from '../errors.js';
import type { Tensor } from '../gpu/tensor.js';
import type { Linear, LinearWeight } from './linear.js';

export interface WeightMap {
  has(name: string): boolean;
  /** A dense tensor in one buffer (norm weights, biases, small matrices). */
  tensor(name: string): Tensor;
  /** A 2-D matrix for a linear layer, dense (row parts) or q4. */
  matrix(name: string): LinearWeight;
  /** Logical shape as stored (PyTorch order). */
  shape(name: string): readonly number[];
}

/** A module path: `pp` descends, `key` names a tensor under it. */
export interface ModulePath {
  readonly prefix: string;
  pp(sub: string | number): ModulePath;
  key(leaf: string): string;
}

export function path(prefix = ''): ModulePath {
  const join = (a: string, b: string | number) => (a ? `${a}.${b}` : String(b));
  return { prefix, pp: (sub) => path(join(prefix, sub)), key: (leaf) => join(prefix, leaf) };
}

/** `<module>.weight` (+ `<module>.bias` when present) as a Linear of [out, in]. */
export function loadLinear(w: WeightMap, module: ModulePath, inFeatures?: number): Linear {
  const name = module.prefix;
  const wName = module.key('weight');
  const shape = w.shape(wName);
  const outFeatures = shape[0]!;
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  if (inFeatures !== undefined && inner !== inFeatures) {
    throw new FormatError(`${wName}: expected ${inFeatures} input features, got [${shape}]`);
  }
  let weight = w.matrix(wName);
  if (shape.length > 2 && weight.kind === 'dense') {
    // A conv kernel [out, C, p, p] is used as the matrix [out, C*p*p] over im2col rows.
    weight = { kind: 'dense', w: { ...weight.w, shape: [outFeatures, inner] } };
  }
  const biasName = module.key('bias');
  return { name, outFeatures, inFeatures: inner, weight, bias: w.has(biasName) ? w.tensor(biasName) : undefined };
}
