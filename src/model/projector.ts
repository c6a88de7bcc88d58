/**
 * The multimodal projector from vision features to decoder embeddings, chosen by
 * `config.projector.spatialMergeSize` (data, not a per-model fork):
 * - 1, Pixtral (Llava): per patch, linear_1 (bias) -> exact GELU -> linear_2 (bias).
 * - 2, mistral3 (`Mistral3MultiModalProjector`): RMSNorm over the vision output (eps =
 *   text rms_norm_eps, not the vision eps) -> 2x2 patch merger per image (channel-major gather,
 *   odd last row/column dropped, `src/kernels/patch-merge.ts`) -> bias-free merging_layer
 *   [Dv, 4Dv] -> linear_1 -> exact GELU -> linear_2; biases only where the checkpoint has them
 *   (`multimodal_projector_bias`, false for Mistral-Small-3.1 and Ministral-3).
 * The output rows are image tokens in prompt order: patches (Pixtral) or merged tokens
 * (mistral3), images concatenated, each row-major over its token grid.
 * The GELU intermediate is held for `HIDDEN_ROWS` rows at a time (dense weights): linear_1 ->
 * GELU -> linear_2 run over row chunks, so only the output is sized for the whole patch budget.
 */
import type { ModelConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import type { Ctx } from '../gpu/kernel.js';
import { Tensor, writeBuffer } from '../gpu/tensor.js';
import { LimitError } from '../errors.js';
import { geluInPlace } from '../kernels/gelu.js';
import { rmsnorm } from '../kernels/rmsnorm.js';
import { MERGE, mergeTable, mergedCount, patchMerge, type PatchGrid } from '../kernels/patch-merge.js';
import { matmul, rowAlignment } from '../kernels/matmul.js';
import { linear, type Linear } from './linear.js';
import { loadLinear, path, type WeightMap } from './weights.js';

/** mistral3 only: the norm and merger in front of the MLP. */
export interface PatchMergerWeights {
  norm: Tensor; // [Dv]
  merging: Linear; // [Dv, 4Dv], no bias
}

export interface ProjectorWeights {
  merger?: PatchMergerWeights;
  linear1: Linear; // [Dt, Dv] (+ bias)
  linear2: Linear; // [Dt, Dt] (+ bias)
}

export function loadProjectorWeights(w: WeightMap, c: ModelConfig, prefix = 'multi_modal_projector'): ProjectorWeights {
  const p = path(prefix);
  const Dv = c.vision.hiddenSize;
  const merge = c.projector.spatialMergeSize;
  if (merge !== 1 && merge !== MERGE) throw new LimitError(`spatial_merge_size ${merge} is not supported (1 or ${MERGE})`);
  return {
    merger:
      merge === MERGE
        ? { norm: w.tensor(p.key('norm.weight')), merging: loadLinear(w, p.pp('patch_merger').pp('merging_layer'), MERGE * MERGE * Dv) }
        : undefined,
    linear1: loadLinear(w, p.pp('linear_1'), Dv),
    linear2: loadLinear(w, p.pp('linear_2'), c.text.hiddenSize),
  };
}

/** mistral3 activations (f32), sized for `maxPatches` vision rows. */
interface MergerActivations {
  normed: Tensor; // [P, Dv] RMSNorm(vision_out)
  table: Tensor; // [M, 2] u32 merge table (base patch, grid width)
  merged: Tensor; // [M, 4Dv] gathered 2x2 blocks, channel-major
  mergedOut: Tensor; // [M, Dv] merging_layer output
}

/** Rows of the linear_1 -> GELU intermediate per chunk: 256 x 5120 f32 = 5 MB for Pixtral. */
const HIDDEN_ROWS = 256;

export class Projector {
  private readonly hidden: Tensor; // [hiddenRows, Dt] linear_1 output of one row chunk
  /** Rows per linear_1 -> GELU -> linear_2 chunk (all rows when the weights are not dense). */
  readonly hiddenRows: number;
  readonly out: Tensor; // [rows, Dt] image features in decoder embedding space
  private readonly m?: MergerActivations;

  constructor(
    private readonly gpu: Gpu,
    private readonly config: ModelConfig,
    private readonly weights: ProjectorWeights,
    readonly maxPatches: number,
  ) {
    const Dt = config.text.hiddenSize;
    const Dv = config.vision.hiddenSize;
    // Merged tokens: sum floor(h/2) floor(w/2) <= P/4.
    const rows = weights.merger ? Math.max(1, Math.floor(maxPatches / (MERGE * MERGE))) : maxPatches;
    const dense = weights.linear1.weight.kind === 'dense' && weights.linear2.weight.kind === 'dense';
    // A multiple of the row step that keeps each chunk's byte offsets valid binding offsets.
    const step = Math.max(rowAlignment(gpu, Dt), rowAlignment(gpu, Dv));
    this.hiddenRows = dense ? Math.min(rows, Math.ceil(HIDDEN_ROWS / step) * step) : rows;
    this.hidden = Tensor.empty(gpu, [this.hiddenRows, Dt], 'f32', 'projector.hidden');
    this.out = Tensor.empty(gpu, [rows, Dt], 'f32', 'projector.out');
    if (weights.merger) {
      this.m = {
        normed: Tensor.empty(gpu, [maxPatches, Dv], 'f32', 'projector.normed'),
        table: Tensor.empty(gpu, [rows, 2], 'u32', 'projector.merge_table'),
        merged: Tensor.empty(gpu, [rows, MERGE * MERGE * Dv], 'f32', 'projector.merged'),
        mergedOut: Tensor.empty(gpu, [rows, Dv], 'f32', 'projector.merged_out'),
      };
    }
  }

  /** Image tokens the projector makes from these patch grids: patches, or merged tokens. */
  tokensFor(grids: readonly PatchGrid[]): number {
    return this.weights.merger ? mergedCount(grids) : grids.reduce((a, g) => a + g.rows * g.cols, 0);
  }

  /**
   * vision [P, Dv] -> out [N, Dt]; returns the output view. N = P for Pixtral; for mistral3
   * N = merged tokens, and `grids` (the per-image patch grids, in the order of the vision rows)
   * is required. Writes the merge table with `queue.writeBuffer`, so it is in place before the
   * pass being recorded is submitted.
   */
  project(ctx: Ctx, vision: Tensor, P: number, grids?: readonly PatchGrid[]): Tensor {
    const Dt = this.config.text.hiddenSize;
    let input = vision;
    let N = P;
    const mw = this.weights.merger;
    if (mw && this.m) {
      if (!grids) throw new LimitError('the mistral3 projector needs the per-image patch grids');
      const patches = grids.reduce((a, g) => a + g.rows * g.cols, 0);
      if (patches !== P) throw new LimitError(`grids hold ${patches} patches, the vision output ${P}`);
      const Dv = this.config.vision.hiddenSize;
      N = mergedCount(grids);
      if (N < 1) throw new LimitError(`images of ${grids.map((g) => `${g.rows}x${g.cols}`).join(', ')} patches give no merged token`);
      writeBuffer(this.gpu, this.m.table.buffer, 0, mergeTable(grids));
      const normed = this.m.normed.view([P, Dv]);
      rmsnorm(ctx, vision.view([P, Dv]), mw.norm, normed, this.config.text.normEps);
      const merged = this.m.merged.view([N, MERGE * MERGE * Dv]);
      patchMerge(ctx, normed, this.m.table, merged, { patches: P, merged: N });
      input = this.m.mergedOut.view([N, Dv]);
      linear(ctx, mw.merging, merged, input, N);
    }
    const out = this.out.view([N, Dt]);
    const { linear1, linear2 } = this.weights;
    if (N <= this.hiddenRows) {
      const hidden = this.hidden.view([N, Dt]);
      linear(ctx, linear1, input, hidden, N);
      geluInPlace(ctx, hidden);
      linear(ctx, linear2, hidden, out, N);
      return out;
    }
    // Row chunks (dense weights, see the constructor): every row is computed as in one pass.
    const w1 = linear1.weight.kind === 'dense' ? linear1.weight.w : null;
    const w2 = linear2.weight.kind === 'dense' ? linear2.weight.w : null;
    if (!w1 || !w2) throw new LimitError('projector: row chunks need dense linear_1 / linear_2');
    for (let r0 = 0; r0 < N; r0 += this.hiddenRows) {
      const n = Math.min(this.hiddenRows, N - r0);
      const hidden = this.hidden.view([n, Dt]);
      matmul(ctx, input, w1, hidden, { M: n, xRowOffset: r0, bias: linear1.bias });
      geluInPlace(ctx, hidden);
      matmul(ctx, hidden, w2, out, { M: n, yRowOffset: r0, bias: linear2.bias });
    }
    return out;
  }

  destroy(): void {
    this.hidden.destroy();
    this.out.destroy();
    if (this.m) for (const t of Object.values(this.m)) t.destroy();
  }
}
