/**
 * Attention with an online (flash-style) softmax, and the decoder's KV cache.
 *
 * Kernels:
 * - `blockDiagonalAttention` (`shaders/attention_prefill.wgsl`, SEGMENTS): non-causal attention
 *   where query t sees keys [seg[t].start, seg[t].end): several images in one vision sequence
 *   attend only within their own image (`imageSegments` builds the table).
 * - `causalAttention` (same shader): T new query tokens at positions pos0..pos0+T-1 over a KV
 *   cache, query t seeing cache rows 0..pos0+t. GQA: query head h uses kv head h / (H / H_kv).
 * - Both on the adapter's matrix units (`attention_prefill_subgroup_matrix.wgsl`, variant
 *   `subgroupMatrix`): the same masks and online softmax, q k^T and p v as f16 fragments with f32
 *   sums, a subgroup per F query rows of a head. The default wherever the device's subgroup-matrix
 *   check passed (subgroup-matrix-check.ts, which runs this kernel too) and head_dim is a multiple
 *   of the fragment; else the SIMT kernel (`simt`, one thread per query row, f32 throughout).
 * - `decodeAttention` (`attention_decode.wgsl` + `attention_combine.wgsl`): one query token over
 *   the cache, split-K on GPUs: (chunks x kv heads) workgroups each reduce a chunk of keys for
 *   the H / H_kv query heads sharing a kv head (K and V read once), then a combine pass merges
 *   the chunks' (max, sum, output). 16k context x 8 kv heads = 512 workgroups, not 32. Short
 *   contexts, and any context on CPU adapters: one pass, a workgroup per kv head walking the
 *   chunks and merging them online.
 * - `kvWrite` (`kv_write.wgsl`): appends the new k or v rows to the cache at pos0 inside the
 *   compute pass (copyBufferToBuffer cannot be recorded in a pass), straight from a fused qkv row
 *   when given a row stride and offset.
 *
 * KV cache layout (one `KvCache` per layer): k and v are separate buffers, each
 * [maxCtx, kvHeads, headDim]; row p holds position p. Append with `kvWrite` after RoPE on k (or,
 * with an activation-dtype cache, RoPE the cache rows in place: the rope kernel takes a row stride
 * and offset). The cache's `storage` is its element type, chosen independently of the activations:
 * - `'act'` (default): the activation dtype (f32, or f16 with `shader-f16`); kvWrite is a copy.
 * - `'f16'` on f32 activations: f16 bits on ANY adapter (no `shader-f16`): `kvWrite` rounds to half
 *   with `pack2x16float`, the attention kernels read vec2<u32> and `unpack2x16float` (define
 *   `KV_F16`). Half the memory and bandwidth of an f32 cache; softmax and sums stay f32.
 * - f16 storage on f16 activations is the plain activation-dtype path; an f32 cache under f16
 *   activations is not supported.
 * Nemo at 16k context: 64 MiB per tensor per layer in f32, 32 MiB in f16.
 *
 * All softmaxes accumulate in f32 whatever the activation dtype. Scale defaults to 1/sqrt(head_dim).
 * Views (`rowStride`, `offset`, in elements) let q, k, v be parts of a fused qkv activation; they
 * must be multiples of 4 (the shaders read vec4), as must head_dim (<= 128).
 */
import { defineKernel, dispatch, grid, type Ctx, type UniformType } from '../gpu/kernel.js';
import { Tensor } from '../gpu/tensor.js';
import type { Gpu } from '../gpu/device.js';
import { KernelError } from '../errors.js';
import type { RopeTable } from './rope.js';
import { subgroupMatrixIsDefault, subgroupMatrixToRun, verifiedSubgroupMatrix, withFragments, type SubgroupMatrixShape } from './subgroup-matrix.js';
import prefillSource from '../../shaders/attention_prefill.wgsl?raw';
import prefillSubgroupMatrixSource from '../../shaders/attention_prefill_subgroup_matrix.wgsl?raw';
import prefillIoSource from '../../shaders/attention_prefill_io.wgsl?raw';
import decodeSource from '../../shaders/attention_decode.wgsl?raw';
import combineSource from '../../shaders/attention_combine.wgsl?raw';
import kvWriteSource from '../../shaders/kv_write.wgsl?raw';

type Act = 'f32' | 'f16';
/** Element type of a KV cache: f32, f16, or `'act'` = the activation dtype. */
export type KvStorage = 'f32' | 'f16' | 'act';

/** Query rows per prefill workgroup (one thread each). */
const PREFILL_WG = 64;
/** Register and tile capacities shared with the shaders (MAX_D4, MAX_BK, MAX_G, CH). */
const MAX_HEAD_DIM = 128;
const MAX_BK = 16;
const MAX_GROUP = 8;
const DECODE_WG = 256;
/** Largest decode chunk (keys per workgroup); the scores of a chunk live in workgroup memory. */
const DECODE_CH_MAX = 1024;
/** Largest chunk of the automatic rule. */
const DECODE_CH = 512;
/**
 * Contexts up to this many keys run in one pass (one workgroup per kv head, no combine
 * dispatch): the attention is microseconds there and the dispatch and its barrier cost more.
 */
export const DECODE_SINGLE_MAX = 256;
const COMBINE_WG = 128;
const KV_WG = 256;

const prefillBindings = [
  { name: 'q', access: 'read' },
  { name: 'k', access: 'read' },
  { name: 'v', access: 'read' },
  { name: 'out', access: 'write' },
  { name: 'seg', access: 'read' },
] as const;
const prefillUniforms = {
  n_q: 'u32', n_heads: 'u32', n_kv: 'u32', q_stride4: 'u32', q_off4: 'u32', k_stride4: 'u32',
  k_off4: 'u32', v_stride4: 'u32', v_off4: 'u32', pos0: 'u32', scale: 'f32',
} as const;
type PrefillKnobs = { dtype: Act; kvF16: boolean; segments: boolean; d4: number };

export const attentionPrefillKernel = defineKernel({
  name: 'attention_prefill',
  source: `${prefillSource}\n${prefillIoSource}`,
  bindings: prefillBindings,
  uniforms: prefillUniforms,
  specialize: (kn: PrefillKnobs & { bk: number }) => ({
    defines: { F16: kn.dtype === 'f16', ACT_F16: kn.dtype === 'f16', KV_F16: kn.kvF16, SEGMENTS: kn.segments },
    overrides: { WG: PREFILL_WG, BK: kn.bk, D4: kn.d4 },
  }),
});

/** The same product on subgroup matrices (f16 operands): `ck` key fragments per tile. */
export const attentionPrefillSubgroupMatrixKernel = defineKernel({
  name: 'attention_prefill_subgroup_matrix',
  source: withFragments(`${prefillSubgroupMatrixSource}\n${prefillIoSource}`),
  bindings: prefillBindings,
  uniforms: prefillUniforms,
  specialize: (kn: PrefillKnobs & { ck: number } & SubgroupMatrixShape) => ({
    defines: { F16: true, ACT_F16: kn.dtype === 'f16', KV_F16: kn.kvF16, SEGMENTS: kn.segments, FRAG16: kn.frag === 16 },
    overrides: { SG: kn.subgroupSize, D4: kn.d4, CK: kn.ck },
  }),
});

type DecodeKnobs = { dtype: Act; kvF16: boolean; gmax: number; d4: number; ch: number };

const decodeUniforms = {
  n_ctx: 'u32', n_heads: 'u32', n_kv: 'u32', q_off4: 'u32', k_stride4: 'u32', k_off4: 'u32',
  v_stride4: 'u32', v_off4: 'u32', chunk: 'u32', tph: 'u32', scale: 'f32',
} as const;
/** ROPE_KV: the plain uniforms, then the rotation's and where the new token's k and v sit in its row. */
const decodeRopeUniforms = { ...decodeUniforms, lo_size: 'u32', half: 'u32', k_new: 'u32', v_new: 'u32', attn_factor: 'f32' } as const;

/**
 * attention_decode.wgsl in one of its forms: split-K pass 1 (part_o, part_ml out) or SINGLE (one
 * chunk per kv head, the combine done in the same dispatch), each plain (q in, cache read) or
 * ROPE_KV (the token's packed un-rotated row in, its RoPE and cache append folded in: the cache
 * is written, the RoPE table read).
 */
function decodeKernel<U extends Record<string, UniformType>>(name: string, uniforms: U, o: { single: boolean; rope: boolean; walk?: boolean }) {
  const cache = o.rope ? 'write' : 'read';
  return defineKernel({
    name,
    source: decodeSource,
    bindings: [
      { name: o.rope ? 'qkv' : 'q', access: 'read' },
      { name: 'k', access: cache },
      { name: 'v', access: cache },
      ...(o.single ? [{ name: 'out', access: 'write' as const }] : [{ name: 'part_o', access: 'write' as const }, { name: 'part_ml', access: 'write' as const }]),
      ...(o.rope ? [{ name: 'tab', access: 'read' as const }] : []),
    ],
    uniforms,
    specialize: (kn: DecodeKnobs) => ({
      defines: { F16: kn.dtype === 'f16', KV_F16: kn.kvF16, SINGLE: o.single, WALK: !!o.walk, ROPE_KV: o.rope },
      overrides: { WG: DECODE_WG, CH: kn.ch, GMAX: kn.gmax, D4: kn.d4 },
    }),
  });
}

export const attentionDecodeKernel = decodeKernel('attention_decode', decodeUniforms, { single: false, rope: false });
export const attentionDecodeSingleKernel = decodeKernel('attention_decode_single', decodeUniforms, { single: true, rope: false });
export const attentionDecodeRopeKernel = decodeKernel('attention_decode_rope', decodeRopeUniforms, { single: false, rope: true });
export const attentionDecodeSingleRopeKernel = decodeKernel('attention_decode_single_rope', decodeRopeUniforms, { single: true, rope: true });
/** One pass over any number of chunks (SINGLE + WALK): CPU adapters' decode attention past one chunk. */
export const attentionDecodeWalkKernel = decodeKernel('attention_decode_walk', decodeUniforms, { single: true, rope: false, walk: true });
export const attentionDecodeWalkRopeKernel = decodeKernel('attention_decode_walk_rope', decodeRopeUniforms, { single: true, rope: true, walk: true });

export const attentionCombineKernel = defineKernel({
  name: 'attention_combine',
  source: combineSource,
  bindings: [
    { name: 'part_o', access: 'read' },
    { name: 'part_ml', access: 'read' },
    { name: 'out', access: 'write' },
  ],
  uniforms: { n_chunks: 'u32', n_heads: 'u32', d4: 'u32', out_off4: 'u32' },
  specialize: (kn: { dtype: Act }) => ({ defines: { F16: kn.dtype === 'f16' }, overrides: { WG: COMBINE_WG } }),
});

export const kvWriteKernel = defineKernel({
  name: 'kv_write',
  source: kvWriteSource,
  bindings: [
    { name: 'src', access: 'read' },
    { name: 'dst', access: 'write' },
  ],
  uniforms: { n_tok: 'u32', width4: 'u32', src_stride4: 'u32', src_off4: 'u32', dst_stride4: 'u32', dst_off4: 'u32', pos0: 'u32' },
  specialize: (kn: { dtype: Act; kvF16: boolean }) => ({ defines: { F16: kn.dtype === 'f16', KV_F16: kn.kvF16 }, overrides: { WG: KV_WG } }),
});

/** One layer's cache: k and v each [maxCtx, kvHeads, headDim] of `storage` elements. */
export interface KvCache {
  k: Tensor;
  v: Tensor;
  maxCtx: number;
  kvHeads: number;
  headDim: number;
  /** Activation dtype of the q, out and new k/v tensors used with this cache. */
  dtype: Act;
  /** Element type of k and v (resolved: never `'act'`). */
  storage: Act;
}

/**
 * A layer's cache for `dtype` activations, stored as `storage` (default `'act'`: the activation
 * dtype, as before). `'f16'` under f32 activations works on every adapter (packed halves).
 */
export function createKvCache(
  gpu: Gpu, maxCtx: number, kvHeads: number, headDim: number, dtype: Act, label = 'kv', storage: KvStorage = 'act',
): KvCache {
  const st: Act = storage === 'act' ? dtype : storage;
  if (dtype === 'f16' && st === 'f32') throw new KernelError('kv_write', `${label}: an f32 cache under f16 activations is not supported`);
  return {
    k: Tensor.empty(gpu, [maxCtx, kvHeads, headDim], st, `${label}.k`),
    v: Tensor.empty(gpu, [maxCtx, kvHeads, headDim], st, `${label}.v`),
    maxCtx,
    kvHeads,
    headDim,
    dtype,
    storage: st,
  };
}

/** Bytes of one layer's k and v: 2 x maxCtx x kvHeads x headDim x (4 | 2). */
export function kvCacheLayerBytes(maxCtx: number, kvHeads: number, headDim: number, storage: Act): number {
  return 2 * maxCtx * kvHeads * headDim * (storage === 'f16' ? 2 : 4);
}

/**
 * Whether the attention kernels read this cache as packed halves (`KV_F16`): f16 storage under
 * f32 activations. Also checks that the cache tensors still match their declared storage and that
 * `act` (the dtype of q, out, or new rows) is the cache's activation dtype.
 */
/** Whether kernels read `c` as packed f16 bits under f32 activations; throws on a mismatched cache. */
export function packedKv(name: string, c: KvCache, act: Act): boolean {
  if (c.k.dtype !== c.storage || c.v.dtype !== c.storage) {
    throw new KernelError(name, `cache ${c.k.label}:${c.k.dtype}, ${c.v.label}:${c.v.dtype} does not match its storage ${c.storage}`);
  }
  if (act !== c.dtype) throw new KernelError(name, `${act} activations with a cache made for ${c.dtype}`);
  return c.storage === 'f16' && c.dtype === 'f32';
}

export function destroyKvCache(c: KvCache): void {
  c.k.destroy();
  c.v.destroy();
}

/** Where heads live in a [tokens, ...] activation (elements); default contiguous [T, heads, d]. */
export interface View {
  rowStride?: number;
  offset?: number;
}

function actDtype(name: string, ...ts: Tensor[]): Act {
  const d = ts[0]!.dtype;
  for (const t of ts) {
    if (t.dtype !== d) throw new KernelError(name, `mixed dtypes: ${ts.map((x) => `${x.label}:${x.dtype}`).join(', ')}`);
  }
  if (d !== 'f32' && d !== 'f16') throw new KernelError(name, `dtype ${d} unsupported`);
  return d;
}

function checkHeadDim(name: string, headDim: number): void {
  if (headDim % 4 !== 0 || headDim <= 0 || headDim > MAX_HEAD_DIM) {
    throw new KernelError(name, `head_dim ${headDim} must be a multiple of 4 in [4, ${MAX_HEAD_DIM}]`);
  }
}

/** Resolves a view and checks that rows [0, rows) of `heads` heads fit in t. Returns vec4 units. */
function view4(name: string, t: Tensor, rows: number, heads: number, headDim: number, v: View = {}): { stride4: number; off4: number } {
  const stride = v.rowStride ?? heads * headDim;
  const off = v.offset ?? 0;
  if (stride % 4 || off % 4) throw new KernelError(name, `${t.label}: row stride ${stride} and offset ${off} must be multiples of 4`);
  if (stride < heads * headDim) throw new KernelError(name, `${t.label}: row stride ${stride} < ${heads} x ${headDim}`);
  const need = rows === 0 ? 0 : off + (rows - 1) * stride + heads * headDim;
  if (need > t.numel) throw new KernelError(name, `${t.label} [${t.shape}] holds fewer than ${rows} rows of ${heads} x ${headDim} (needs ${need} elements)`);
  return { stride4: stride / 4, off4: off / 4 };
}

function checkGqa(name: string, heads: number, kvHeads: number): void {
  if (kvHeads <= 0 || heads % kvHeads !== 0) throw new KernelError(name, `${heads} query heads not a multiple of ${kvHeads} kv heads`);
}

/** Keys per prefill tile: as many as the K and V tiles allow in workgroup memory, at most 16. */
function prefillTile(gpu: Gpu, d4: number): number {
  const bytes = gpu.limits.maxComputeWorkgroupStorageSize - 64; // 16 B of range atomics, margin
  const bk = Math.min(MAX_BK, Math.floor(bytes / (2 * d4 * 16)));
  if (bk < 1) throw new KernelError('attention_prefill', `workgroup memory ${bytes} too small for head_dim ${4 * d4}`);
  return bk;
}

/**
 * Key fragments per tile of the subgroup-matrix prefill: the most, up to 4, whose workgroup
 * memory fits the device (shaders/attention_prefill_subgroup_matrix.wgsl: the K or V tile, S or
 * O in f32, P, the rows' state), or 0. Nemo's head_dim 128 with 16 x 16 fragments: 1 under the
 * 16 KiB default limit (12.6 KB), 4 with 32 KiB (26.6 KB).
 */
export function subgroupMatrixKeyFragments(gpu: Gpu, frag: number, headDim: number): number {
  for (const ck of [4, 2, 1]) {
    const bk = ck * frag;
    const bytes = 2 * bk * headDim + 4 * frag * Math.max(headDim, bk) + 2 * frag * bk + 12 * frag + 16;
    if (bytes + 64 <= gpu.limits.maxComputeWorkgroupStorageSize) return ck; // 64: alignment padding
  }
  return 0;
}

/** Why the subgroup-matrix attention cannot take head_dim `headDim` with F x F fragments, or null. */
function subgroupMatrixUnfit(gpu: Gpu, frag: number, headDim: number): string | null {
  if (headDim % frag) return `head_dim ${headDim} is not a multiple of the ${frag}x${frag} fragment`;
  if (!subgroupMatrixKeyFragments(gpu, frag, headDim)) return 'workgroup memory too small for one key fragment per tile';
  return null;
}

/** The prefill attention that runs by default on this device for heads of `headDim`. */
export function defaultAttentionPrefillVariant(gpu: Gpu, headDim: number): AttentionPrefillVariant {
  const shape = verifiedSubgroupMatrix(gpu);
  return shape && subgroupMatrixIsDefault(gpu) && !subgroupMatrixUnfit(gpu, shape.frag, headDim) ? 'subgroupMatrix' : 'simt';
}

/**
 * `simt`: one thread per query row, f32 scores and sums (attention_prefill.wgsl). `subgroupMatrix`
 * (attention_prefill_subgroup_matrix.wgsl): both products on the matrix units, q, k, v and the
 * weights rounded to f16; the default where the device's subgroup-matrix check made that kernel
 * family the default and head_dim is a multiple of the fragment.
 */
export type AttentionPrefillVariant = 'simt' | 'subgroupMatrix';

interface PrefillArgs {
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Rows available in k and v (cache length or sequence length) for bounds checks. */
  keyRows: number;
  scale?: number;
  qView?: View;
  kView?: View;
  vView?: View;
  variant?: AttentionPrefillVariant;
  /** The fragment shape for `subgroupMatrix` (default: the one checked on the device). */
  shape?: SubgroupMatrixShape;
}

/** `kvF16`: k and v hold packed f16 bits (an f16-storage cache under f32 activations). */
function prefill(ctx: Ctx, out: Tensor, q: Tensor, k: Tensor, v: Tensor, seg: Tensor | null, pos0: number, a: PrefillArgs, kvF16 = false): void {
  const name = 'attention_prefill';
  const dtype = kvF16 ? actDtype(name, out, q) : actDtype(name, out, q, k, v);
  if (kvF16) actDtype(name, k, v);
  checkHeadDim(name, a.headDim);
  checkGqa(name, a.heads, a.kvHeads);
  const qv = view4(name, q, a.tokens, a.heads, a.headDim, a.qView);
  const kv = view4(name, k, a.keyRows, a.kvHeads, a.headDim, a.kView);
  const vv = view4(name, v, a.keyRows, a.kvHeads, a.headDim, a.vView);
  view4(name, out, a.tokens, a.heads, a.headDim);
  const d4 = a.headDim / 4;
  const args = {
    buffers: [q.buffer, k.buffer, v.buffer, out.buffer, (seg ?? q).buffer],
    uniforms: {
      n_q: a.tokens, n_heads: a.heads, n_kv: a.kvHeads, q_stride4: qv.stride4, q_off4: qv.off4,
      k_stride4: kv.stride4, k_off4: kv.off4, v_stride4: vv.stride4, v_off4: vv.off4, pos0,
      scale: a.scale ?? 1 / Math.sqrt(a.headDim),
    },
  };
  const knobs = { dtype, kvF16, segments: seg !== null, d4 };
  const frag = (a.shape ?? verifiedSubgroupMatrix(ctx.gpu))?.frag;
  const unfit = frag ? subgroupMatrixUnfit(ctx.gpu, frag, a.headDim) : null;
  const shape = subgroupMatrixToRun(ctx.gpu, 'attention_prefill_subgroup_matrix', { variant: a.variant, shape: a.shape }, unfit);
  if (shape) {
    // One subgroup per workgroup whatever the shape says (the kernel has no 4-subgroup form).
    const one = { ...shape, subgroups: 1 as const };
    const ck = subgroupMatrixKeyFragments(ctx.gpu, shape.frag, a.headDim);
    dispatch(ctx.gpu, ctx.pass, attentionPrefillSubgroupMatrixKernel, { ...knobs, ck, ...one }, { ...args, workgroups: [Math.ceil(a.tokens / shape.frag), a.heads] });
  } else {
    const bk = prefillTile(ctx.gpu, d4);
    dispatch(ctx.gpu, ctx.pass, attentionPrefillKernel, { ...knobs, bk }, { ...args, workgroups: [Math.ceil(a.tokens / PREFILL_WG), a.heads] });
  }
}

/**
 * Per-token key ranges for images concatenated in one sequence: token t of an image spanning
 * [s, e) gets (s, e). Upload as a [T, 2] u32 tensor for `blockDiagonalAttention`.
 */
export function imageSegments(lengths: readonly number[]): Uint32Array {
  const total = lengths.reduce((x, y) => x + y, 0);
  const out = new Uint32Array(2 * total);
  let s = 0;
  for (const n of lengths) {
    for (let t = s; t < s + n; t++) {
      out[2 * t] = s;
      out[2 * t + 1] = s + n;
    }
    s += n;
  }
  return out;
}

/**
 * Non-causal attention with a block-diagonal mask. q [tokens, heads, d], k and v [keyRows,
 * kvHeads, d] (or views of a fused qkv), `segments` [tokens, 2] u32 (start, end) key ranges in
 * [0, keyRows], out [tokens, heads, d]. Vision: heads = kvHeads = 16, d = 64.
 */
export function blockDiagonalAttention(ctx: Ctx, out: Tensor, q: Tensor, k: Tensor, v: Tensor, segments: Tensor, a: PrefillArgs): void {
  if (segments.dtype !== 'u32' || segments.numel < 2 * a.tokens) {
    throw new KernelError('attention_prefill', `segments must be u32 [${a.tokens}, 2], got ${segments.dtype} [${segments.shape}]`);
  }
  prefill(ctx, out, q, k, v, segments, 0, a);
}

/**
 * Causal prefill over a KV cache: q [tokens, heads, d] (or a view) at positions pos0..pos0+T-1;
 * the cache must already hold rows 0..pos0+T-1 (`kvWrite` first). out [tokens, heads, d].
 */
export function causalAttention(
  ctx: Ctx,
  out: Tensor,
  q: Tensor,
  cache: KvCache,
  a: { tokens: number; heads: number; pos0: number; scale?: number; qView?: View; variant?: AttentionPrefillVariant; shape?: SubgroupMatrixShape },
): void {
  if (a.pos0 + a.tokens > cache.maxCtx) {
    throw new KernelError('attention_prefill', `positions up to ${a.pos0 + a.tokens - 1} exceed the cache (${cache.maxCtx})`);
  }
  const kvF16 = packedKv('attention_prefill', cache, actDtype('attention_prefill', out, q));
  prefill(ctx, out, q, cache.k, cache.v, null, a.pos0, {
    tokens: a.tokens, heads: a.heads, kvHeads: cache.kvHeads, headDim: cache.headDim, keyRows: cache.maxCtx,
    scale: a.scale, qView: a.qView, variant: a.variant, shape: a.shape,
  }, kvF16);
}

/**
 * Keys per decode chunk: about 32 chunks per kv head, between 32 and 512 keys, then lowered
 * until the chunk's scores fit in workgroup memory (`limit` bytes; G query heads per kv head).
 * Measured on an H100 (Dawn/Vulkan, bench section `attention`, chunk sweep): per-workgroup
 * fixed costs dominate, so long chunks win: 4k context 0.063 ms at 128 (0.068 at 64, 0.096 at
 * 512), 16k context 0.140 ms at 512 (0.163 at 256, 0.188 at 1024).
 */
export function decodeChunk(nCtx: number, G = 4, headDim = 128, limit = 16384): number {
  let c = 32;
  while (c < DECODE_CH && c * 32 < nCtx) c *= 2;
  return fittedChunk(c, G, headDim, limit);
}

/** The largest chunk up to DECODE_CH whose scores fit in workgroup memory (one-pass walks). */
export function widestDecodeChunk(G: number, headDim: number, limit: number): number {
  return fittedChunk(DECODE_CH, G, headDim, limit);
}

/** Chunk c halved (down to 32) until its scores fit in `limit` bytes of workgroup memory. */
function fittedChunk(c: number, G: number, headDim: number, limit: number): number {
  while (c > 32 && decodeWorkgroupBytes(G, headDim, c) > limit) c /= 2;
  return c;
}

/** Workgroup memory of attention_decode.wgsl: qs, sc, red, pw, mg, lg. */
function decodeWorkgroupBytes(G: number, headDim: number, ch: number): number {
  return G * headDim * 4 + G * ch * 4 + DECODE_WG * 4 + DECODE_WG * 16 + 2 * G * 4;
}

/** Split-K partials for `decodeAttention`: part_o [chunks, heads, d] f32, part_ml [chunks, heads, 2] f32. */
export interface DecodeScratch {
  partO: Tensor;
  partMl: Tensor;
  maxChunks: number;
  heads: number;
  headDim: number;
}

/**
 * Scratch for contexts up to `maxCtx` with the automatic chunk (`decodeChunk`), or with explicit
 * chunks no smaller than `minChunk`.
 */
export function createDecodeScratch(gpu: Gpu, maxCtx: number, heads: number, headDim: number, minChunk?: number): DecodeScratch {
  // decodeChunk gives at most 32 chunks until the chunk reaches its cap, then ceil(n / chunk); the
  // cap can drop to 128 where workgroup memory is short (8 query heads per kv head, 16 KiB).
  const maxChunks = minChunk ? Math.ceil(maxCtx / minChunk) : Math.max(Math.min(32, Math.ceil(maxCtx / 32)), Math.ceil(maxCtx / 128));
  return {
    partO: Tensor.empty(gpu, [maxChunks, heads, headDim], 'f32', 'attn.part_o'),
    partMl: Tensor.empty(gpu, [maxChunks, heads, 2], 'f32', 'attn.part_ml'),
    maxChunks,
    heads,
    headDim,
  };
}

export function destroyDecodeScratch(s: DecodeScratch): void {
  s.partO.destroy();
  s.partMl.destroy();
}

/**
 * RoPE and the cache append folded into `decodeAttention`: q is then the token's packed,
 * un-rotated row [q | k | v] (q at `qOffset`), the token sits at position nCtx - 1, and the
 * kernel rotates its q and k heads with `table` (1D, no llama-4 query scale) and writes k and v
 * into cache row nCtx - 1: bit-identical to `ropeKvWrite` then `decodeAttention` without it.
 */
export interface DecodeRope {
  table: RopeTable;
  attnFactor?: number;
}

/**
 * One query token over cache rows [0, nCtx): q [heads, d] (optionally at element `qOffset`, e.g.
 * inside a fused qkv row), out [heads, d]. With `split` (the default on GPUs): two dispatches,
 * split-K chunks (a workgroup per chunk and kv head) then the combine; one
 * (`attentionDecodeSingleKernel`) when a single chunk holds every key: by default when
 * nCtx <= DECODE_SINGLE_MAX and its scores fit in workgroup memory. Without (the default on CPU
 * adapters, `gpu.isSoftware`, where a workgroup per kv head already keeps every core busy and a
 * dispatch costs more than more parallelism saves): always one dispatch, each kv head's
 * workgroup walking the chunks in turn and merging them online. With `rope` (`DecodeRope`), the
 * token's RoPE and cache append happen inside the same dispatches.
 */
export function decodeAttention(
  ctx: Ctx,
  out: Tensor,
  q: Tensor,
  cache: KvCache,
  scratch: DecodeScratch,
  a: { nCtx: number; heads: number; scale?: number; qOffset?: number; chunk?: number; split?: boolean; rope?: DecodeRope },
): void {
  const name = 'attention_decode';
  const dtype = actDtype(name, out, q);
  const kvF16 = packedKv(name, cache, dtype);
  const d = cache.headDim;
  checkHeadDim(name, d);
  checkGqa(name, a.heads, cache.kvHeads);
  const G = a.heads / cache.kvHeads;
  if (G > MAX_GROUP) throw new KernelError(name, `${G} query heads per kv head exceed ${MAX_GROUP}`);
  if (a.nCtx < 1 || a.nCtx > cache.maxCtx) throw new KernelError(name, `context ${a.nCtx} outside [1, ${cache.maxCtx}]`);
  const qv = view4(name, q, 1, a.heads, d, { offset: a.qOffset ?? 0 });
  view4(name, out, 1, a.heads, d);
  const wgLimit = ctx.gpu.limits.maxComputeWorkgroupStorageSize;
  const short = a.nCtx <= DECODE_SINGLE_MAX && decodeWorkgroupBytes(G, d, Math.max(32, 2 ** Math.ceil(Math.log2(a.nCtx)))) <= wgLimit;
  const split = a.split ?? !ctx.gpu.isSoftware;
  const chunk = a.chunk ?? (short ? a.nCtx : split ? decodeChunk(a.nCtx, G, d, wgLimit) : widestDecodeChunk(G, d, wgLimit));
  if (chunk < 1 || chunk > DECODE_CH_MAX) throw new KernelError(name, `chunk ${chunk} outside [1, ${DECODE_CH_MAX}]`);
  // Chunk capacity of the pipeline: the next power of two (few pipelines, no wasted memory).
  let ch = 32;
  while (ch < chunk) ch *= 2;
  const nChunks = Math.ceil(a.nCtx / chunk);
  const single = !split || nChunks === 1;
  if (!single && (scratch.heads !== a.heads || scratch.headDim !== d || nChunks > scratch.maxChunks)) {
    throw new KernelError(name, `scratch [${scratch.maxChunks}, ${scratch.heads}, ${scratch.headDim}] too small for ${nChunks} chunks x ${a.heads} x ${d}`);
  }
  const wgBytes = decodeWorkgroupBytes(G, d, ch);
  if (wgBytes > ctx.gpu.limits.maxComputeWorkgroupStorageSize) {
    throw new KernelError(name, `${G} heads per kv head need ${wgBytes} bytes of workgroup memory (limit ${ctx.gpu.limits.maxComputeWorkgroupStorageSize})`);
  }
  let tph = 1;
  while (tph * 2 * G <= DECODE_WG) tph *= 2;
  const d4 = d / 4;
  const rowStride4 = (cache.kvHeads * d) / 4;
  const uniforms = {
    n_ctx: a.nCtx, n_heads: a.heads, n_kv: cache.kvHeads, q_off4: qv.off4, k_stride4: rowStride4, k_off4: 0,
    v_stride4: rowStride4, v_off4: 0, chunk, tph, scale: a.scale ?? 1 / Math.sqrt(d),
  };
  const knobs = { dtype, kvF16, gmax: G, d4, ch };
  if (a.rope) {
    const kNew = qv.off4 * 4 + a.heads * d;
    const rope = checkDecodeRope(name, a.rope, q, cache, kNew, a.nCtx - 1);
    const ropeUniforms = { ...uniforms, ...rope.uniforms, k_new: kNew, v_new: kNew + cache.kvHeads * d };
    if (single) {
      dispatch(ctx.gpu, ctx.pass, nChunks === 1 ? attentionDecodeSingleRopeKernel : attentionDecodeWalkRopeKernel, knobs, {
        buffers: [q.buffer, cache.k.buffer, cache.v.buffer, out.buffer, rope.table],
        uniforms: ropeUniforms,
        workgroups: [1, cache.kvHeads],
      });
      return;
    }
    dispatch(ctx.gpu, ctx.pass, attentionDecodeRopeKernel, knobs, {
      buffers: [q.buffer, cache.k.buffer, cache.v.buffer, scratch.partO.buffer, scratch.partMl.buffer, rope.table],
      uniforms: ropeUniforms,
      workgroups: [nChunks, cache.kvHeads],
    });
  } else if (single) {
    dispatch(ctx.gpu, ctx.pass, nChunks === 1 ? attentionDecodeSingleKernel : attentionDecodeWalkKernel, knobs, {
      buffers: [q.buffer, cache.k.buffer, cache.v.buffer, out.buffer],
      uniforms,
      workgroups: [1, cache.kvHeads],
    });
    return;
  } else {
    dispatch(ctx.gpu, ctx.pass, attentionDecodeKernel, knobs, {
      buffers: [q.buffer, cache.k.buffer, cache.v.buffer, scratch.partO.buffer, scratch.partMl.buffer],
      uniforms,
      workgroups: [nChunks, cache.kvHeads],
    });
  }
  dispatch(ctx.gpu, ctx.pass, attentionCombineKernel, { dtype }, {
    buffers: [scratch.partO.buffer, scratch.partMl.buffer, out.buffer],
    uniforms: { n_chunks: nChunks, n_heads: a.heads, d4, out_off4: 0 },
    workgroups: [a.heads],
  });
}

/** Checks a `DecodeRope` against the packed row and the cache; its buffer and uniforms. */
function checkDecodeRope(name: string, r: DecodeRope, qkv: Tensor, cache: KvCache, kNew: number, pos: number) {
  const t = r.table;
  const d = cache.headDim;
  if (t.kind !== '1d') throw new KernelError(name, 'RoPE in decode attention needs a 1D rope table (buildRopeTable)');
  if (t.headDim !== d) throw new KernelError(name, `rope table head_dim ${t.headDim} != cache head_dim ${d}`);
  if (pos >= t.maxPos) throw new KernelError(name, `position ${pos} outside the rope table (${t.maxPos})`);
  if (qkv.numel < kNew + 2 * cache.kvHeads * d) throw new KernelError(name, `packed row [${qkv.shape}] shorter than q, k and v (${kNew + 2 * cache.kvHeads * d})`);
  return { table: t.tensor.buffer, uniforms: { lo_size: t.loSize, half: d / 2, attn_factor: r.attnFactor ?? 1 } };
}

/**
 * Appends `tokens` rows of new keys and values to the cache at rows pos0..pos0+T-1. k, v are
 * [tokens, kvHeads, d] or views (row stride, offset in elements) of a fused qkv activation, in
 * the cache's activation dtype; an f16-storage cache under f32 activations gets them rounded to
 * half (round to nearest even where the adapter's pack2x16float does so).
 */
export function kvWrite(
  ctx: Ctx,
  cache: KvCache,
  k: Tensor,
  v: Tensor,
  a: { tokens: number; pos0: number; kView?: View; vView?: View },
): void {
  const name = 'kv_write';
  const dtype = actDtype(name, k, v);
  const kvF16 = packedKv(name, cache, dtype);
  if (a.pos0 + a.tokens > cache.maxCtx) throw new KernelError(name, `rows up to ${a.pos0 + a.tokens - 1} exceed the cache (${cache.maxCtx})`);
  const width4 = (cache.kvHeads * cache.headDim) / 4;
  if (!Number.isInteger(width4)) throw new KernelError(name, `kv row ${cache.kvHeads} x ${cache.headDim} not a multiple of 4`);
  for (const [src, dst, vw] of [[k, cache.k, a.kView], [v, cache.v, a.vView]] as const) {
    const sv = view4(name, src, a.tokens, cache.kvHeads, cache.headDim, vw);
    dispatch(ctx.gpu, ctx.pass, kvWriteKernel, { dtype, kvF16 }, {
      buffers: [src.buffer, dst.buffer],
      uniforms: { n_tok: a.tokens, width4, src_stride4: sv.stride4, src_off4: sv.off4, dst_stride4: width4, dst_off4: 0, pos0: a.pos0 },
      workgroups: grid(Math.ceil((a.tokens * width4) / KV_WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
  }
}
