/**
 * The mistral3 2x2 patch merger gather (`Mistral3PatchMerger`: `unfold` with kernel = stride =
 * merge size 2): vision features x [P, D] of several images (patches row-major per image, images
 * concatenated) become merged rows y [M, 4D], channel-major inside a row:
 * `y[m, c*4 + ki*2 + kj] = x[(2bi+ki)*w + (2bj+kj), c]` for merged token (bi, bj) over
 * (h/2, w/2) of an image with patch grid h x w; an odd last row/column is dropped. The
 * bias-free `merging_layer` [D, 4D] that follows is a plain linear (see `src/model/projector.ts`).
 *
 * The per-image grids travel as a small u32 table [M, 2] (base patch, grid width) built on the
 * CPU by `mergeTable`, written once per call; the kernel is a pure gather (bit-exact).
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import source from '../../shaders/patch_merge.wgsl?raw';

const WG = 256;

/** Only the 2x2 merge of the mistral3 family exists; the layout math above assumes it. */
export const MERGE = 2;

export const patchMergeKernel = defineKernel({
  name: 'patch_merge',
  source,
  bindings: [
    { name: 'x', access: 'read' },
    { name: 'tok', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { D: 'u32', total: 'u32' },
  specialize: (k: { dtype: 'f32' | 'f16' }) => ({ defines: { F16: k.dtype === 'f16' }, overrides: { WG } }),
});

export interface PatchGrid {
  rows: number;
  cols: number;
}

/** The merged token grid of a patch grid: floor(rows / 2) x floor(cols / 2). */
export function mergedGrid(g: PatchGrid): PatchGrid {
  return { rows: Math.floor(g.rows / MERGE), cols: Math.floor(g.cols / MERGE) };
}

/** Merged tokens of all images: sum of floor(h/2) * floor(w/2). */
export function mergedCount(grids: readonly PatchGrid[]): number {
  return grids.reduce((a, g) => {
    const m = mergedGrid(g);
    return a + m.rows * m.cols;
  }, 0);
}

/**
 * The kernel's u32 table [M, 2]: for each merged token (images in order, row-major over the
 * merged grid) the index of its top-left patch in x and its image's patch-grid width.
 */
export function mergeTable(grids: readonly PatchGrid[]): Uint32Array {
  const out = new Uint32Array(2 * mergedCount(grids));
  let k = 0;
  let start = 0;
  for (const g of grids) {
    const m = mergedGrid(g);
    for (let bi = 0; bi < m.rows; bi++) {
      for (let bj = 0; bj < m.cols; bj++) {
        out[k++] = start + MERGE * bi * g.cols + MERGE * bj;
        out[k++] = g.cols;
      }
    }
    start += g.rows * g.cols;
  }
  return out;
}

/**
 * y [M, 4D] = merge(x [P, D]) with `table` from `mergeTable(grids)` already on the GPU
 * (u32 [>= 2M]). x and y share the activation dtype (f32, or f16 with shader-f16).
 */
export function patchMerge(ctx: Ctx, x: Tensor, table: Tensor, y: Tensor, a: { patches: number; merged: number }): void {
  const fail = (msg: string): never => {
    throw new KernelError('patch_merge', `${x.label} -> ${y.label}: ${msg}`);
  };
  const D = x.shape[x.shape.length - 1] ?? 0;
  const { patches: P, merged: M } = a;
  if (D === 0) fail(`empty rows in [${x.shape}]`);
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) fail(`dtypes ${x.dtype} -> ${y.dtype}`);
  if (x.numel < P * D) fail(`x [${x.shape}] holds fewer than ${P} patches`);
  if (4 * M > P) fail(`${M} merged tokens need at least ${4 * M} patches, got ${P}`);
  if (y.numel < M * 4 * D) fail(`y [${y.shape}] smaller than [${M}, ${4 * D}]`);
  if (table.dtype !== 'u32' || table.numel < 2 * M) fail(`table must be u32 [>= ${2 * M}], got ${table.dtype} [${table.shape}]`);
  if (x.buffer === y.buffer) fail('x and y must be different buffers');
  const total = M * 4 * D;
  dispatch(ctx.gpu, ctx.pass, patchMergeKernel, { dtype: x.dtype as 'f32' | 'f16' }, {
    buffers: [x.buffer, table.buffer, y.buffer],
    uniforms: { D, total },
    workgroups: grid(Math.ceil(total / WG), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
