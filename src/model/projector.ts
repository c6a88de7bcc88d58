/**
 * The multimodal projector from vision features to decoder embeddings. Pixtral (Llava):
 * linear_1 (bias) -> exact GELU -> linear_2 (bias), per patch.
 */
import type { ModelConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import type { Ctx } from '../gpu/kernel.js';
import { Tensor } from '../gpu/tensor.js';
import { geluInPlace } from '../kernels/gelu.js';
import { linear, type Linear } from './linear.js';
import { loadLinear, path, type WeightMap } from './weights.js';

export interface ProjectorWeights {
  linear1: Linear; // [Dt, Dv] (+ bias)
  linear2: Linear; // [Dt, Dt] (+ bias)
}

export function loadProjectorWeights(w: WeightMap, c: ModelConfig, prefix = 'multi_modal_projector'): ProjectorWeights {
  const p = path(prefix);
  return {
    linear1: loadLinear(w, p.pp('linear_1'), c.vision.hiddenSize),
    linear2: loadLinear(w, p.pp('linear_2'), c.text.hiddenSize),
  };
}

export class Projector {
  private readonly hidden: Tensor; // [P, Dt] linear_1 output
  readonly out: Tensor; // [P, Dt] image features in decoder embedding space

  constructor(
    gpu: Gpu,
    private readonly config: ModelConfig,
    private readonly weights: ProjectorWeights,
    readonly maxPatches: number,
  ) {
    const Dt = config.text.hiddenSize;
    this.hidden = Tensor.empty(gpu, [maxPatches, Dt], 'f32', 'projector.hidden');
    this.out = Tensor.empty(gpu, [maxPatches, Dt], 'f32', 'projector.out');
  }

  /** vision [P, Dv] -> out [P, Dt]; returns the output view. */
  project(ctx: Ctx, vision: Tensor, P: number): Tensor {
    const Dt = this.config.text.hiddenSize;
    const hidden = this.hidden.view([P, Dt]);
    const out = this.out.view([P, Dt]);
    linear(ctx, this.weights.linear1, vision, hidden, P);
    geluInPlace(ctx, hidden);
    linear(ctx, this.weights.linear2, hidden, out, P);
    return out;
  }

  destroy(): void {
    this.hidden.destroy();
    this.out.destroy();
  }
}
