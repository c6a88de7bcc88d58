/**
 * Pixtral-ViT: patch embedding (a conv p x p, stride p, no bias, as im2col rows x matmul) ->
 * `ln_pre` RMSNorm -> N layers of [RMSNorm -> attention with 2D RoPE, block-diagonal across
 * images -> residual -> RMSNorm -> SiLU-gated MLP -> residual]; no final norm. Several images
 * share one sequence. Activations are allocated once for `maxPatches`, and kept small: the MLP
 * runs over row chunks whose [rows, I] intermediates live in the q/k/v buffers (dead by then),
 * and the im2col patch rows in the attention-output buffer (dead until the first attention), so
 * a 4096-patch budget takes 6 x [P, D] f32 (101 MB for Pixtral) instead of 315 MB.
 *
 * Layer weights either live on the GPU (resident: `encode` records the whole encoder into one
 * pass, the caller submits it) or in host memory (`visionWeights: 'host'`, src/gpu/host-buffer.ts):
 * then `run` streams them through two GPU layer slots (`vision-slots.ts`), one submit per layer.
 */
import type { VisionConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import type { Ctx } from '../gpu/kernel.js';
import { Tensor, writeBuffer } from '../gpu/tensor.js';
import { LimitError } from '../errors.js';
import { rmsnorm } from '../kernels/rmsnorm.js';
import { addInPlace } from '../kernels/add.js';
import { siluMul } from '../kernels/silu-mul.js';
import { buildVisionRopeTable, packPatchCoords, visionRopeInPlace, type RopeTable } from '../kernels/rope.js';
import { blockDiagonalAttention, imageSegments } from '../kernels/attention.js';
import { matmul, rowAlignment } from '../kernels/matmul.js';
import { linear, type Linear } from './linear.js';
import { loadLinear, path, type WeightMap } from './weights.js';
import { gridOf, patchify, type EncoderImage, type Grid } from './patchify.js';
import { layersOnHost, VisionLayerSlots } from './vision-slots.js';

export interface VisionLayerWeights {
  attentionNorm: Tensor; // [D]
  q: Linear; // [D, D]
  k: Linear;
  v: Linear;
  o: Linear;
  ffnNorm: Tensor; // [D]
  gate: Linear; // [I, D]
  up: Linear; // [I, D]
  down: Linear; // [D, I]
}

export interface VisionWeights {
  patchConv: Linear; // [D, C*p*p] (conv kernel [D, C, p, p] viewed flat)
  lnPre: Tensor; // [D]
  layers: VisionLayerWeights[];
}

export function loadVisionWeights(w: WeightMap, c: VisionConfig, prefix = 'vision_tower'): VisionWeights {
  const vt = path(prefix);
  const D = c.hiddenSize;
  return {
    patchConv: loadLinear(w, vt.pp('patch_conv'), c.numChannels * c.patchSize * c.patchSize),
    lnPre: w.tensor(vt.key('ln_pre.weight')),
    layers: Array.from({ length: c.numLayers }, (_, i) => {
      const l = vt.pp('transformer.layers').pp(i);
      const attn = l.pp('attention');
      const ff = l.pp('feed_forward');
      return {
        attentionNorm: w.tensor(l.key('attention_norm.weight')),
        q: loadLinear(w, attn.pp('q_proj'), D),
        k: loadLinear(w, attn.pp('k_proj'), D),
        v: loadLinear(w, attn.pp('v_proj'), D),
        o: loadLinear(w, attn.pp('o_proj'), D),
        ffnNorm: w.tensor(l.key('ffn_norm.weight')),
        gate: loadLinear(w, ff.pp('gate_proj'), D),
        up: loadLinear(w, ff.pp('up_proj'), D),
        down: loadLinear(w, ff.pp('down_proj'), c.intermediateSize),
      };
    }),
  };
}

/**
 * Activations of the encoder, sized for `maxPatches` (f32). `patches` is a view of `attn`'s
 * buffer and `gate`/`up`/`act` views of `q`/`k`/`v`'s when they fit (`shared`); otherwise (a
 * non-dense MLP weight, which takes no row window, or a shape where they do not fit) they are
 * buffers of their own.
 */
interface VisionActivations {
  patches: Tensor; // [P, C*p*p]
  x: Tensor; // [P, D] residual stream, then the output
  h: Tensor; // [P, D] normed input of a block
  q: Tensor; // [P, D]
  k: Tensor; // [P, D]
  v: Tensor; // [P, D]
  attn: Tensor; // [P, D]
  gate: Tensor; // [mlpRows, I]
  up: Tensor; // [mlpRows, I]
  act: Tensor; // [mlpRows, I] silu(gate) * up
  coords: Tensor; // [P] u32 (row << 16 | col)
  segments: Tensor; // [P, 2] u32 (start, end) key range of each patch's image
}

/** Buffers `acts` owns (views of another buffer are left out). */
function owned(a: VisionActivations): Tensor[] {
  const seen = new Set<GPUBuffer>();
  return Object.values(a).filter((t) => !seen.has(t.buffer) && seen.add(t.buffer));
}

function denseOf(l: Linear) {
  if (l.weight.kind !== 'dense') throw new LimitError(`${l.name}: a row-chunked MLP needs dense weights, got ${l.weight.kind}`);
  return l.weight.w;
}

/** What `encode` and `run` give back: the output view [patches, D] and the images' grids. */
export interface Encoded {
  out: Tensor;
  grids: Grid[];
  patches: number;
}

export class VisionEncoder {
  private readonly acts: VisionActivations;
  /** The layer slots when the layer weights are in host memory, else null (resident). */
  readonly slots: VisionLayerSlots | null;
  /** Patch rows per MLP chunk (P when the MLP runs whole). */
  readonly mlpRows: number;
  private readonly rope: RopeTable;
  private readonly hostPatches: Float32Array;

  constructor(
    private readonly gpu: Gpu,
    readonly config: VisionConfig,
    private readonly weights: VisionWeights,
    readonly maxPatches: number,
  ) {
    const c = config;
    const P = maxPatches;
    const D = c.hiddenSize;
    const I = c.intermediateSize;
    const rowLen = c.numChannels * c.patchSize * c.patchSize;
    const t = (shape: number[], label: string, dtype: 'f32' | 'u32' = 'f32') => Tensor.empty(gpu, shape, dtype, `vision.${label}`);
    const q = t([P, D], 'q');
    const k = t([P, D], 'k');
    const v = t([P, D], 'v');
    const attn = t([P, D], 'attn');
    // MLP row chunks: as many rows as a [P, D] buffer holds at width I, a multiple of the rows
    // that keep the window's byte offset into h a valid binding offset.
    const step = rowAlignment(gpu, D);
    const dense = weights.layers.every((l) => l.gate.weight.kind === 'dense' && l.up.weight.kind === 'dense' && l.down.weight.kind === 'dense');
    const fit = Math.floor(Math.min(P, Math.floor((P * D) / I)) / step) * step;
    this.mlpRows = dense && fit >= 1 ? fit : P;
    const mlp = (shared: Tensor, label: string) => (this.mlpRows < P || I <= D ? shared.view([this.mlpRows, I], `vision.${label}`) : t([P, I], label));
    this.acts = {
      patches: rowLen <= D ? attn.view([P, rowLen], 'vision.patches') : t([P, rowLen], 'patches'),
      x: t([P, D], 'x'),
      h: t([P, D], 'h'),
      q,
      k,
      v,
      attn,
      gate: mlp(q, 'gate'),
      up: mlp(k, 'up'),
      act: mlp(v, 'act'),
      coords: t([P], 'coords', 'u32'),
      segments: t([P * 2], 'segments', 'u32'),
    };
    this.hostPatches = new Float32Array(P * rowLen);
    this.rope = buildVisionRopeTable(gpu, c.headDim, c.ropeTheta, c.imageSize / c.patchSize);
    this.slots = layersOnHost(weights.layers) ? new VisionLayerSlots(gpu, weights.layers) : null;
  }

  /** Layer i's weights as recorded now: resident, or the slot it streams through. */
  private layerWeights(i: number): VisionLayerWeights {
    return this.slots ? this.slots.slots[i % this.slots.slots.length]! : this.weights.layers[i]!;
  }

  /** Token grids of the images, checked against the encoder's limits. */
  grids(images: readonly EncoderImage[]): Grid[] {
    const side = this.config.imageSize / this.config.patchSize;
    const grids = images.map((im) => gridOf(im, this.config.patchSize));
    for (const g of grids) {
      if (g.rows > side || g.cols > side) {
        throw new LimitError(`image grid ${g.rows}x${g.cols} exceeds ${side}x${side} patches (image_size ${this.config.imageSize})`);
      }
    }
    const total = grids.reduce((a, g) => a + g.rows * g.cols, 0);
    if (total > this.maxPatches) throw new LimitError(`${total} patches exceed the encoder's budget of ${this.maxPatches}`);
    return grids;
  }

  /**
   * Records the whole encoder; the output view [patches, D] is valid once the pass is submitted.
   * With host-memory weights the layers are recorded against their slots unfilled: only for
   * planning pipelines (`src/model/pipelines.ts`); `run` encodes for real.
   */
  encode(ctx: Ctx, images: readonly EncoderImage[]): Encoded {
    const e = this.embed(ctx, images);
    this.transformer(ctx, e.patches);
    return e;
  }

  /**
   * Encodes and submits: resident weights in one submission (`encode`, then `tail` in the same
   * pass); host-memory weights as the embedding, then per layer i the upload of its bytes into
   * slot i % 2 and one submission of the layer, the last one with `tail`. `tail` records what
   * consumes the output (the projector). Returns once the work is submitted, not done.
   */
  run(images: readonly EncoderImage[], tail: (ctx: Ctx, e: Encoded) => void = () => {}): Encoded {
    const submit = (label: string, f: (ctx: Ctx) => void) => {
      const enc = this.gpu.device.createCommandEncoder({ label });
      const pass = enc.beginComputePass({ label });
      f({ gpu: this.gpu, pass });
      pass.end();
      this.gpu.submit([enc.finish()]);
    };
    const slots = this.slots;
    if (!slots) {
      let e!: Encoded;
      submit('vision', (ctx) => {
        e = this.encode(ctx, images);
        tail(ctx, e);
      });
      return e;
    }
    let e!: Encoded;
    submit('vision.embed', (ctx) => (e = this.embed(ctx, images)));
    const n = slots.layerCount;
    for (let i = 0; i < n; i++) {
      const l = slots.fill(i);
      submit(`vision.layer${i}`, (ctx) => {
        this.layer(ctx, l, e.patches);
        if (i === n - 1) tail(ctx, e);
      });
    }
    if (!n) submit('vision.tail', (ctx) => tail(ctx, e));
    return e;
  }

  /**
   * Uploads the images and records the patch embedding and ln_pre: afterwards `h` holds the
   * patch embeddings and `out` (the residual stream) their ln_pre output.
   */
  embed(ctx: Ctx, images: readonly EncoderImage[]): { out: Tensor; h: Tensor; grids: Grid[]; patches: number } {
    const c = this.config;
    const a = this.acts;
    const grids = this.grids(images);
    const P = patchify(images, c.patchSize, c.numChannels, this.hostPatches);
    const rowLen = c.numChannels * c.patchSize * c.patchSize;
    writeBuffer(this.gpu, a.patches.buffer, 0, this.hostPatches.subarray(0, P * rowLen));
    writeBuffer(this.gpu, a.coords.buffer, 0, packPatchCoords(grids));
    writeBuffer(this.gpu, a.segments.buffer, 0, imageSegments(grids.map((g) => g.rows * g.cols)));
    const x = a.x.view([P, c.hiddenSize]);
    const h = a.h.view([P, c.hiddenSize]);
    linear(ctx, this.weights.patchConv, a.patches.view([P, rowLen]), h, P); // patch_embeds
    rmsnorm(ctx, h, this.weights.lnPre, x, c.normEps); // ln_pre
    return { out: x, h, grids, patches: P };
  }

  /** Records the transformer layers over the first `P` rows of the residual stream. */
  transformer(ctx: Ctx, P: number): void {
    for (let i = 0; i < this.weights.layers.length; i++) this.layer(ctx, this.layerWeights(i), P);
  }

  /** Records one transformer layer with weights `l` over the first `P` rows. */
  private layer(ctx: Ctx, l: VisionLayerWeights, P: number): void {
    const c = this.config;
    const a = this.acts;
    const D = c.hiddenSize;
    const I = c.intermediateSize;
    const v = (t: Tensor, cols: number) => t.view([P, cols]);
    const x = v(a.x, D);
    const h = v(a.h, D);
    const heads = { tokens: P, heads: c.numHeads };
    rmsnorm(ctx, x, l.attentionNorm, h, c.normEps);
    linear(ctx, l.q, h, v(a.q, D), P);
    linear(ctx, l.k, h, v(a.k, D), P);
    linear(ctx, l.v, h, v(a.v, D), P);
    visionRopeInPlace(ctx, v(a.q, D), this.rope, a.coords, heads);
    visionRopeInPlace(ctx, v(a.k, D), this.rope, a.coords, heads);
    blockDiagonalAttention(ctx, v(a.attn, D), v(a.q, D), v(a.k, D), v(a.v, D), a.segments, {
      tokens: P,
      heads: c.numHeads,
      kvHeads: c.numHeads,
      headDim: c.headDim,
      keyRows: P,
    });
    linear(ctx, l.o, v(a.attn, D), h, P);
    addInPlace(ctx, x, h);
    rmsnorm(ctx, x, l.ffnNorm, h, c.normEps);
    if (this.mlpRows >= P) {
      linear(ctx, l.gate, h, v(a.gate, I), P);
      linear(ctx, l.up, h, v(a.up, I), P);
      siluMul(ctx, v(a.gate, I), v(a.up, I), v(a.act, I));
      linear(ctx, l.down, v(a.act, I), h, P);
    } else {
      // Row chunks: each reads its rows of h and writes its MLP output back over them (rows
      // are independent here, and later chunks read only later rows). Every output row is
      // computed exactly as in one pass: the matmul's sums do not depend on M or the window.
      for (let r0 = 0; r0 < P; r0 += this.mlpRows) {
        const n = Math.min(this.mlpRows, P - r0);
        const gate = a.gate.view([n, I]);
        const up = a.up.view([n, I]);
        const act = a.act.view([n, I]);
        matmul(ctx, h, denseOf(l.gate), gate, { M: n, xRowOffset: r0, bias: l.gate.bias });
        matmul(ctx, h, denseOf(l.up), up, { M: n, xRowOffset: r0, bias: l.up.bias });
        siluMul(ctx, gate, up, act);
        matmul(ctx, act, denseOf(l.down), h, { M: n, yRowOffset: r0, bias: l.down.bias });
      }
    }
    addInPlace(ctx, x, h);
  }

  destroy(): void {
    for (const t of owned(this.acts)) t.destroy();
    this.rope.tensor.destroy();
    this.slots?.destroy();
  }
}
