/**
 * Next-token selection on the GPU: greedy argmax, or temperature / top-k / top-p sampling with a
 * Hugging Face repetition penalty, so a decode step reads back 16 bytes instead of V logits.
 *
 * - `argmax.wgsl`: two-pass parallel argmax, lowest index on ties.
 * - `sample_topk.wgsl`: pass 1 sorts each workgroup's chunk and keeps its top k, pass 2 merges those
 *   sorted lists, applies softmax with temperature, the top-p cut and one draw with the host's `u`.
 * - `penalty_mask.wgsl`: the set of ids to penalise, as a bitmask (duplicates penalised once).
 *
 * Bound: topK is 1..TOPK_MAX (64). Top-p is applied to the top-k candidates only (as Hugging Face
 * does when both are set), so probability mass outside the top 64 is never sampled; this is the
 * documented limit of GPU sampling here. `temperature: 0` means greedy (argmax); the penalty still
 * applies. The draw is deterministic given `u`: pass u from a seeded PRNG (`seededUniforms`) and the
 * same seed gives the same tokens.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import { createBuffer, readBuffer, type Tensor } from '../gpu/tensor.js';
import type { Gpu } from '../gpu/device.js';
import { KernelError } from '../errors.js';
import argmaxSource from '../../shaders/argmax.wgsl?raw';
import topkSource from '../../shaders/sample_topk.wgsl?raw';
import maskSource from '../../shaders/penalty_mask.wgsl?raw';

/** Largest supported top-k. */
export const TOPK_MAX = 64;
const WG = 256;
/** Logits per argmax pass-1 workgroup: WG * 16 = 4096 (32 workgroups for V = 131072). */
const ARGMAX_ITEMS = 16;
/**
 * Logits per top-k pass-1 workgroup: WG * 4 = 1024 (a power of two >= TOPK_MAX), bitonic-sorted
 * in 8 KiB of workgroup memory; 128 workgroups, 128 * k candidates for V = 131072.
 */
const TOPK_ITEMS = 4;
/** Pass-1 lists pass 2 can merge: HEADS (4, in sample_topk.wgsl) per thread * WG. */
const TOPK_MAX_LISTS = 4 * WG;

type Act = 'f32' | 'f16';

export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy argmax. */
  temperature: number;
  /** Keep the k most likely tokens, 1..TOPK_MAX. */
  topK: number;
  /** Nucleus: keep the shortest prefix of the top-k whose mass reaches topP; 1 = off. (0, 1]. */
  topP: number;
  /** Hugging Face repetition penalty (> 0; 1 = off) on the ids passed as `penaltyIds`. */
  repetitionPenalty: number;
  /** This step's uniform draw in [0, 1), from a seeded PRNG. Unused when greedy. */
  u: number;
}

/** Ids the repetition penalty applies to: u32 [>= count] on the GPU. */
export interface PenaltyIds {
  ids: Tensor;
  count: number;
}

export interface SampleResult {
  token: number;
  /** Probability of `token` among the kept candidates (1 for argmax). */
  prob: number;
  /** Its logit after the repetition penalty. */
  logit: number;
  /** Candidates kept after top-k and top-p (1 for argmax). */
  kept: number;
}

export const argmaxPartialKernel = defineKernel({
  name: 'argmax',
  source: argmaxSource,
  bindings: [
    { name: 'logits', access: 'read' },
    { name: 'mask', access: 'read' },
    { name: 'partial', access: 'write' },
  ],
  uniforms: { V: 'u32', base: 'u32', penalty: 'f32' },
  specialize: (k: { act: Act }) => ({ defines: { F16: k.act === 'f16' }, overrides: { WG, ITEMS: ARGMAX_ITEMS } }),
});

export const argmaxFinalKernel = defineKernel({
  name: 'argmax_final',
  source: argmaxSource,
  bindings: [
    { name: 'partial', access: 'read' },
    { name: 'out', access: 'write' },
  ],
  uniforms: { n: 'u32' },
  specialize: (_: Record<string, never>) => ({ defines: { FINAL: true }, overrides: { WG } }),
});

export const topkPartialKernel = defineKernel({
  name: 'sample_topk',
  source: topkSource,
  bindings: [
    { name: 'logits', access: 'read' },
    { name: 'mask', access: 'read' },
    { name: 'cand', access: 'write' },
  ],
  uniforms: { V: 'u32', base: 'u32', k: 'u32', penalty: 'f32' },
  specialize: (k: { act: Act }) => ({
    defines: { F16: k.act === 'f16' },
    overrides: { WG, ITEMS: TOPK_ITEMS, KMAX: TOPK_MAX },
  }),
});

export const topkFinalKernel = defineKernel({
  name: 'sample_topk_final',
  source: topkSource,
  bindings: [
    { name: 'cand', access: 'read' },
    { name: 'out', access: 'write' },
  ],
  uniforms: { lists: 'u32', k: 'u32', chunk: 'u32', temperature: 'f32', topP: 'f32', u: 'f32' },
  specialize: (_: Record<string, never>) => ({ defines: { FINAL: true }, overrides: { WG, KMAX: TOPK_MAX } }),
});

export const penaltyMaskKernel = defineKernel({
  name: 'penalty_mask',
  source: maskSource,
  bindings: [
    { name: 'ids', access: 'read' },
    { name: 'mask', access: 'write' },
  ],
  uniforms: { V: 'u32', n: 'u32' },
  specialize: (_: Record<string, never>) => ({ overrides: { WG } }),
});

/** Throws a KernelError unless the options are in range (see SamplingOptions). */
export function checkSamplingOptions(o: SamplingOptions): void {
  const bad = (what: string) => {
    throw new KernelError('sample_topk', what);
  };
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) bad(`temperature ${o.temperature} must be finite and >= 0`);
  if (!Number.isInteger(o.topK) || o.topK < 1 || o.topK > TOPK_MAX) bad(`topK ${o.topK} must be an integer in 1..${TOPK_MAX}`);
  if (!(o.topP > 0 && o.topP <= 1)) bad(`topP ${o.topP} must be in (0, 1]`);
  if (!(o.repetitionPenalty > 0) || !Number.isFinite(o.repetitionPenalty)) bad(`repetitionPenalty ${o.repetitionPenalty} must be finite and > 0`);
  if (!(o.u >= 0 && o.u < 1)) bad(`u ${o.u} must be in [0, 1)`);
}

export { seededUniforms } from '../util/random.js';

/**
 * Scratch buffers and dispatch rules for one vocabulary size. `record*` methods add dispatches to
 * an open pass; `read()` fetches the 16-byte result of the last one.
 */
export class Sampler {
  /** u32 [4]: token, f32 bits of prob, f32 bits of the penalised logit, kept count. */
  readonly out: GPUBuffer;
  /** vec2<u32> [max(argmax workgroups, top-k workgroups * TOPK_MAX)]: pass-1 results. */
  private readonly partial: GPUBuffer;
  /** u32 [ceil(V / 32)]: ids the penalty applies to. */
  private readonly mask: GPUBuffer;
  private readonly argmaxGroups: number;
  private readonly topkGroups: number;

  constructor(
    readonly gpu: Gpu,
    readonly vocab: number,
  ) {
    // Pass 2 of sample_topk merges at most TOPK_MAX_LISTS pass-1 lists: V <= 1024 * 1024.
    if (!Number.isInteger(vocab) || vocab < 1 || vocab > TOPK_MAX_LISTS * WG * TOPK_ITEMS) {
      throw new KernelError('sample_topk', `vocab ${vocab} outside 1..${TOPK_MAX_LISTS * WG * TOPK_ITEMS}`);
    }
    this.argmaxGroups = Math.ceil(vocab / (WG * ARGMAX_ITEMS));
    this.topkGroups = Math.ceil(vocab / (WG * TOPK_ITEMS));
    this.out = createBuffer(gpu, 16, 'sampler.out');
    this.partial = createBuffer(gpu, Math.max(this.argmaxGroups, this.topkGroups * TOPK_MAX) * 8, 'sampler.partial');
    this.mask = createBuffer(gpu, Math.ceil(vocab / 32) * 4, 'sampler.mask');
  }

  /** Greedy when `opts.temperature === 0`, else top-k / top-p sampling. */
  record(ctx: Ctx, logits: Tensor, opts: SamplingOptions, penaltyIds?: PenaltyIds, row?: number): void {
    if (opts.temperature === 0) {
      checkSamplingOptions({ ...opts, topK: 1 });
      this.recordArgmax(ctx, logits, { repetitionPenalty: opts.repetitionPenalty, penaltyIds, row });
    } else {
      this.recordTopK(ctx, logits, opts, penaltyIds, row);
    }
  }

  /** out = argmax over logits row `row` (default: the last) after the optional penalty. */
  recordArgmax(ctx: Ctx, logits: Tensor, o: { repetitionPenalty?: number; penaltyIds?: PenaltyIds; row?: number } = {}): void {
    const penalty = o.repetitionPenalty ?? 1;
    if (!(penalty > 0) || !Number.isFinite(penalty)) throw new KernelError('argmax', `repetitionPenalty ${penalty} must be finite and > 0`);
    const { act, base } = this.rowOf('argmax', logits, o.row);
    this.recordMask(ctx, penalty, o.penaltyIds);
    const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
    dispatch(ctx.gpu, ctx.pass, argmaxPartialKernel, { act }, {
      buffers: [logits.buffer, this.mask, this.partial],
      uniforms: { V: this.vocab, base, penalty },
      workgroups: grid(this.argmaxGroups, max),
    });
    dispatch(ctx.gpu, ctx.pass, argmaxFinalKernel, {}, {
      buffers: [this.partial, this.out],
      uniforms: { n: this.argmaxGroups },
      workgroups: [1],
    });
  }

  /** out = one draw from the top-k / top-p distribution of logits row `row` (default: the last). */
  recordTopK(ctx: Ctx, logits: Tensor, opts: SamplingOptions, penaltyIds?: PenaltyIds, row?: number): void {
    checkSamplingOptions(opts);
    if (opts.temperature === 0) throw new KernelError('sample_topk', 'temperature 0 is greedy: use recordArgmax');
    const { act, base } = this.rowOf('sample_topk', logits, row);
    this.recordMask(ctx, opts.repetitionPenalty, penaltyIds);
    const k = opts.topK;
    const max = ctx.gpu.limits.maxComputeWorkgroupsPerDimension;
    dispatch(ctx.gpu, ctx.pass, topkPartialKernel, { act }, {
      buffers: [logits.buffer, this.mask, this.partial],
      uniforms: { V: this.vocab, base, k, penalty: opts.repetitionPenalty },
      workgroups: grid(this.topkGroups, max),
    });
    dispatch(ctx.gpu, ctx.pass, topkFinalKernel, {}, {
      buffers: [this.partial, this.out],
      uniforms: { lists: this.topkGroups, k, chunk: WG * TOPK_ITEMS, temperature: opts.temperature, topP: opts.topP, u: opts.u },
      workgroups: [1],
    });
  }

  /** Reads the result of the last recorded selection (waits for the GPU). */
  async read(): Promise<SampleResult> {
    const bytes = await readBuffer(this.gpu, this.out, 0, 16);
    const u = new Uint32Array(bytes);
    const f = new Float32Array(bytes);
    return { token: u[0]!, prob: f[1]!, logit: f[2]!, kept: u[3]! };
  }

  destroy(): void {
    this.out.destroy();
    this.partial.destroy();
    this.mask.destroy();
  }

  private rowOf(name: string, logits: Tensor, row?: number): { act: Act; base: number } {
    const V = this.vocab;
    if (logits.dtype !== 'f32' && logits.dtype !== 'f16') throw new KernelError(name, `logits must be f32 or f16, got ${logits.dtype}`);
    if (logits.dtype === 'f16' && !this.gpu.features.f16) throw new KernelError(name, 'f16 logits need shader-f16');
    if (logits.shape[logits.shape.length - 1] !== V) throw new KernelError(name, `logits [${logits.shape}] do not end in V=${V}`);
    const rows = logits.numel / V;
    const r = row ?? rows - 1;
    if (!Number.isInteger(r) || r < 0 || r >= rows) throw new KernelError(name, `row ${r} outside logits [${logits.shape}]`);
    return { act: logits.dtype, base: r * V };
  }

  private recordMask(ctx: Ctx, penalty: number, ids?: PenaltyIds): void {
    if (penalty === 1) return; // the kernels skip the mask entirely
    const n = ids?.count ?? 0;
    if (ids && (ids.ids.dtype !== 'u32' || !Number.isInteger(n) || n < 0 || n > ids.ids.numel)) {
      throw new KernelError('penalty_mask', `penalty ids must be u32 with count <= ${ids.ids.numel}, got ${ids.ids.dtype} x ${n}`);
    }
    dispatch(ctx.gpu, ctx.pass, penaltyMaskKernel, {}, {
      // With no ids the mask is only cleared; `out` stands in for the unread ids binding.
      buffers: [ids ? ids.ids.buffer : this.out, this.mask],
      uniforms: { V: this.vocab, n },
      workgroups: [1],
    });
  }
}
