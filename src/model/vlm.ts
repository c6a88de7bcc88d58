/**
 * The whole vision-language model on one GPU: vision encoder -> projector -> decoder over a KV
 * cache. `prefill` runs a prompt (reusing the cached prefix, encoding only the images whose
 * tokens still have to run), `append` feeds one generated token; after either, the logits of
 * the last position are on the GPU for sampling or readback. Settings (config, limits), weights
 * (read-only, `WeightMap`) and activations (owned by each stage, allocated once) stay separate.
 */
import { tokenPixels, type ModelConfig } from '../config.js';
import type { Gpu } from '../gpu/device.js';
import { readBuffer, type Tensor } from '../gpu/tensor.js';
import { ContextLengthError, LimitError, throwIfAborted } from '../errors.js';
import type { EmbeddingTable } from '../kernels/embedding.js';
import { VisionEncoder, loadVisionWeights } from './vision.js';
import { Projector, loadProjectorWeights } from './projector.js';
import { Decoder, loadDecoderWeights } from './decoder.js';
import { KvCache, type KvCacheStorage, type TokenKey } from './kv-cache.js';
import { gridOf, type EncoderImage } from './patchify.js';
import type { WeightMap } from './weights.js';

export interface ModelLimits {
  /** Tokens the KV cache holds (prompt + generated). */
  maxContext: number;
  /** Vision-encoder patches per pass: images are encoded in groups that fit. */
  maxPatches: number;
  /** Prompt tokens per prefill step. */
  maxChunk: number;
}

export interface PromptImage {
  /** Index in the prompt of the image's first token. */
  start: number;
  /**
   * Token grid (rows of `cols` [IMG] tokens, each closed by a break/end token): the patch grid
   * for Pixtral, the merged grid floor(patch rows / merge) x floor(patch cols / merge) for mistral3.
   */
  rows: number;
  cols: number;
  image: EncoderImage;
  /** Identifies the image's content, so cached positions are reused only for the same image. */
  key: string;
}

export interface PrefillInput {
  ids: number[];
  images: PromptImage[];
}

export interface PrefillResult {
  /** Positions taken from the cache instead of being run again. */
  reused: number;
  /** Positions run now. */
  ran: number;
  imagesEncoded: number;
  imageEncodeMs: number;
  prefillMs: number;
  /** [ran, V] logits of every position run, when asked for. */
  logits?: Float32Array;
}

export interface VlmOptions {
  maxContext?: number;
  maxPatches?: number;
  maxChunk?: number;
  /** KV cache element type: 'f16' halves its memory on every adapter. Default 'f32'. */
  kvCache?: KvCacheStorage;
}

export type ModelWeightMap = WeightMap & { table(name: string): EmbeddingTable };

/** Context and patch budgets from the config, the caller's wishes and the adapter's limits. */
export function planLimits(gpu: Gpu, c: ModelConfig, o: VlmOptions = {}): ModelLimits {
  const side = c.vision.imageSize / c.vision.patchSize;
  const kvRowBytes = c.text.numKvHeads * c.text.headDim * (o.kvCache === 'f16' ? 2 : 4);
  const maxBinding = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const byBinding = Math.floor(maxBinding / kvRowBytes);
  const maxContext = Math.min(o.maxContext ?? 8192, c.text.maxPositionEmbeddings, byBinding);
  const maxPatches = o.maxPatches ?? side * side;
  const maxChunk = Math.min(o.maxChunk ?? 256, maxContext);
  if (maxContext < 2 || maxPatches < 1 || maxChunk < 1) throw new LimitError(`unusable limits: context ${maxContext}, patches ${maxPatches}`);
  return { maxContext, maxPatches, maxChunk };
}

export class VisionLanguageModel {
  readonly limits: ModelLimits;
  readonly vision: VisionEncoder;
  readonly projector: Projector;
  readonly decoder: Decoder;
  readonly cache: KvCache;

  constructor(
    private readonly gpu: Gpu,
    readonly config: ModelConfig,
    weights: ModelWeightMap,
    options: VlmOptions = {},
  ) {
    this.limits = planLimits(gpu, config, options);
    const L = this.limits;
    this.vision = new VisionEncoder(gpu, config.vision, loadVisionWeights(weights, config.vision), L.maxPatches);
    this.projector = new Projector(gpu, config, loadProjectorWeights(weights, config), L.maxPatches);
    this.decoder = new Decoder(gpu, config.text, loadDecoderWeights(weights, config.text), L.maxChunk, L.maxContext);
    this.cache = new KvCache(gpu, config.text, L.maxContext, options.kvCache ?? 'f32');
  }

  /** Pixels per side of one image token. */
  get tokenPixels(): number {
    return tokenPixels(this.config);
  }

  /** What each prompt position holds, for cache reuse. */
  keysOf(input: PrefillInput): TokenKey[] {
    const keys: TokenKey[] = input.ids.slice();
    for (const im of input.images) {
      for (let r = 0; r < im.rows; r++) {
        for (let c = 0; c < im.cols; c++) keys[im.start + r * (im.cols + 1) + c] = `${im.key}:${r * im.cols + c}`;
      }
    }
    return keys;
  }

  /** Throws ContextLengthError when `tokens` (prompt + new tokens) cannot fit. */
  checkContext(tokens: number, detail = ''): void {
    if (tokens > this.limits.maxContext) throw new ContextLengthError(tokens, this.limits.maxContext, detail);
  }

  /**
   * Runs the prompt through the model, reusing the cached prefix. Afterwards the cache holds the
   * whole prompt and the last position's logits are ready (`lastLogits`).
   */
  async prefill(input: PrefillInput, opts: { returnLogits?: boolean; signal?: AbortSignal } = {}): Promise<PrefillResult> {
    const S = input.ids.length;
    if (S < 1) throw new LimitError('empty prompt');
    this.checkContext(S);
    for (const im of input.images) {
      const end = im.start + im.rows * (im.cols + 1);
      if (im.start < 0 || end > S) throw new LimitError(`image tokens [${im.start}, ${end}) outside the prompt of ${S}`);
      for (let i = im.start; i < end; i++) {
        const want = (i - im.start) % (im.cols + 1) === im.cols ? (i === end - 1 ? this.config.tokens.imgEnd : this.config.tokens.imgBreak) : this.config.tokens.img;
        if (input.ids[i] !== want) throw new LimitError(`prompt position ${i} should hold image token ${want}, holds ${input.ids[i]}`);
      }
      // The encoder takes the patch grid from the pixels; the prompt holds the (merged) token grid.
      const g = gridOf(im.image, this.config.vision.patchSize);
      const merge = this.config.projector.spatialMergeSize;
      if (Math.floor(g.rows / merge) !== im.rows || Math.floor(g.cols / merge) !== im.cols) {
        throw new LimitError(
          `image of ${im.image.height}x${im.image.width} pixels (${g.rows}x${g.cols} patches, merge ${merge}) does not match its token grid ${im.rows}x${im.cols}`,
        );
      }
    }
    const keys = this.keysOf(input);
    const reused = opts.returnLogits ? 0 : this.cache.reusablePrefix(keys);
    this.cache.truncate(reused);

    // Images that still have tokens to run, encoded in groups that fit the encoder's patch
    // budget (attention is per image anyway); each group just before the first chunk that needs
    // it, and no chunk spans two groups, so one projector output buffer serves every group.
    const todo = input.images.filter((im) => im.start + im.rows * (im.cols + 1) > reused);
    const groups = this.groupImages(todo);
    const groupOf = new Map<PromptImage, number>();
    groups.forEach((g, k) => g.forEach((im) => groupOf.set(im, k)));
    const featureRow = new Map<PromptImage, number>();
    const endOf = (im: PromptImage) => im.start + im.rows * (im.cols + 1);
    let current = -1;
    let imageEncodeMs = 0;
    const encodeGroup = async (k: number) => {
      const t = performance.now();
      let row = 0;
      for (const im of groups[k]!) {
        featureRow.set(im, row);
        row += im.rows * im.cols;
      }
      this.vision.run(groups[k]!.map((im) => im.image), (ctx, v) => this.projector.project(ctx, v.out, v.patches, v.grids));
      await this.gpu.sync();
      current = k;
      imageEncodeMs += performance.now() - t;
    };
    const t0 = performance.now();

    const V = this.config.text.vocabSize;
    const logits = opts.returnLogits ? new Float32Array((S - reused) * V) : undefined;
    const D = this.config.text.hiddenSize;
    for (let c0 = reused; c0 < S; ) {
      throwIfAborted(opts.signal);
      let c1 = Math.min(S, c0 + this.limits.maxChunk);
      const inChunk = todo.filter((im) => im.start < c1 && endOf(im) > c0);
      if (inChunk.length) {
        const first = groupOf.get(inChunk[0]!)!;
        if (first !== current) await encodeGroup(first);
        const later = inChunk.find((im) => groupOf.get(im)! !== current);
        if (later) c1 = later.start; // > c0: an image of a later group follows the current one's
      }
      const T = c1 - c0;
      const enc = this.gpu.device.createCommandEncoder({ label: 'prefill' });
      let pass = enc.beginComputePass({ label: 'embed' });
      this.decoder.embedTokens({ gpu: this.gpu, pass }, Uint32Array.from(input.ids.slice(c0, c1)));
      pass.end();
      // Image features replace the [IMG] embeddings: one copy per grid row inside this chunk.
      for (const im of inChunk) {
        if (groupOf.get(im) !== current) continue;
        const base = featureRow.get(im)!;
        for (let r = 0; r < im.rows; r++) {
          const p0 = im.start + r * (im.cols + 1);
          const a = Math.max(p0, c0);
          const b = Math.min(p0 + im.cols, c1);
          if (a >= b) continue;
          enc.copyBufferToBuffer(this.projector.out.buffer, (base + r * im.cols + (a - p0)) * D * 4, this.decoder.hidden(T).buffer, (a - c0) * D * 4, (b - a) * D * 4);
        }
      }
      pass = enc.beginComputePass({ label: 'layers' });
      const ctx = { gpu: this.gpu, pass };
      this.decoder.layers(ctx, T, c0, this.cache);
      this.decoder.finalNorm(ctx, T);
      const all = logits ? this.decoder.chunkLogits(ctx, T) : null;
      pass.end();
      if (c1 === S) {
        this.decoder.copyLastRow(enc, T);
        pass = enc.beginComputePass({ label: 'lm_head' });
        this.decoder.lastLogits({ gpu: this.gpu, pass });
        pass.end();
      }
      this.gpu.submit([enc.finish()]);
      if (all && logits) logits.set(new Float32Array(await readBuffer(this.gpu, all.buffer, 0, T * V * 4)), (c0 - reused) * V);
      for (let i = c0; i < c1; i++) this.cache.keys.push(keys[i]!); // no spread: a chunk can hold many keys
      c0 = c1;
    }
    await this.gpu.sync();
    const elapsed = performance.now() - t0;
    return { reused, ran: S - reused, imagesEncoded: todo.length, imageEncodeMs, prefillMs: elapsed - imageEncodeMs, logits };
  }

  /**
   * Images in prompt order, cut into consecutive groups of at most `maxPatches` encoder patches.
   * An image larger than the budget on its own is refused: the encoder cannot split one image.
   */
  groupImages(images: readonly PromptImage[]): PromptImage[][] {
    const groups: PromptImage[][] = [];
    let patches = 0;
    for (const im of images) {
      const g = gridOf(im.image, this.config.vision.patchSize);
      const n = g.rows * g.cols;
      if (n > this.limits.maxPatches) {
        throw new LimitError(
          `an image of ${im.image.height}x${im.image.width} pixels has ${n} patches, more than the encoder's budget of ${this.limits.maxPatches} per pass (the maxPatches load option)`,
        );
      }
      if (!groups.length || patches + n > this.limits.maxPatches) {
        groups.push([]);
        patches = 0;
      }
      groups.at(-1)!.push(im);
      patches += n;
    }
    return groups;
  }

  /** Feeds one token at the next position; afterwards its logits are ready. */
  append(token: number): void {
    const pos = this.cache.length;
    this.checkContext(pos + 1);
    const enc = this.gpu.device.createCommandEncoder({ label: 'decode' });
    let pass = enc.beginComputePass({ label: 'decode' });
    const ctx = { gpu: this.gpu, pass };
    this.decoder.embedTokens(ctx, Uint32Array.of(token));
    this.decoder.layers(ctx, 1, pos, this.cache);
    this.decoder.finalNorm(ctx, 1);
    pass.end();
    this.decoder.copyLastRow(enc, 1);
    pass = enc.beginComputePass({ label: 'lm_head' });
    this.decoder.lastLogits({ gpu: this.gpu, pass });
    pass.end();
    this.gpu.submit([enc.finish()]);
    this.cache.keys.push(token);
  }

  /** The last position's logits on the GPU [1, V]. */
  get logits(): Tensor {
    return this.decoder.logits;
  }

  /** Reads the last position's logits back (tests, evaluation). */
  async readLogits(): Promise<Float32Array> {
    const t = this.logits;
    return new Float32Array(await readBuffer(this.gpu, t.buffer, 0, t.byteLength));
  }

  destroy(): void {
    this.vision.destroy();
    this.projector.destroy();
    this.decoder.destroy();
    this.cache.destroy();
  }
}
