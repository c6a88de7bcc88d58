/**
 * The adapter's matrix units as WGSL subgroup matrices (`chromium-experimental-subgroup-matrix`):
 * the fragment shape a kernel can use on this adapter (`subgroupMatrixShape`, from
 * `adapterInfo.subgroupMatrixConfigs`) and, per device, whether a kernel built on them passed its
 * check on that device and is the default there (`markSubgroupMatrix`, `verifiedSubgroupMatrix`,
 * `subgroupMatrixIsDefault`). The extension is experimental: its WGSL has changed between Dawn
 * revisions and drivers differ, so the prefill kernels built on it (q4, GGUF and dense weights:
 * shaders/subgroup_matrix_matmul.wgsl; attention: attention_prefill_subgroup_matrix.wgsl) are
 * chosen only after they compiled and matched CPU references on the device itself
 * (`checkSubgroupMatrix`, subgroup-matrix-check.ts, run during load); anything else keeps the
 * tiled and SIMT kernels.
 */
import type { Gpu } from '../gpu/device.js';
import { KernelError } from '../errors.js';
import fragmentsSource from '../../shaders/subgroup_matrix_fragments.wgsl?raw';

/** A subgroup-matrix kernel's WGSL with the fragment types (F, Left, Right, Result) appended. */
export function withFragments(source: string): string {
  return `${source}\n${fragmentsSource}`;
}

/**
 * A square fragment of F x F f16 operands with an f32 result, the subgroup size that runs it, and
 * the subgroups of a workgroup: 1 (a 4F x 4F tile), or 4 sharing the staged operands of an
 * 8F x 8F tile (needs `subgroup_id`; shaders/subgroup_matrix_matmul.wgsl, SUBGROUPS4).
 */
export type SubgroupMatrixShape = {
  frag: 8 | 16;
  subgroupSize: number;
  subgroups: 1 | 4;
};

/** '16x16 fragments, subgroup 32, 1 subgroup per workgroup': for messages and bench output. */
export function describeShape(s: SubgroupMatrixShape): string {
  return `${s.frag}x${s.frag} fragments, subgroup ${s.subgroupSize}, ${s.subgroups} subgroup${s.subgroups > 1 ? 's' : ''} per workgroup`;
}

/** Side of a workgroup's output tile. */
export function subgroupMatrixTile(shape: SubgroupMatrixShape): number {
  return (shape.subgroups === 4 ? 2 : 1) * 4 * shape.frag;
}

/**
 * Defines and overrides of shaders/subgroup_matrix_matmul.wgsl: f16 enabled whatever the
 * activations (the operands are f16), the fragment side, the subgroup size; `weight` adds the
 * weight format's defines (GGUF and its block format; none for q4).
 */
export function subgroupMatrixSpec(k: { dtype: 'f32' | 'f16' } & SubgroupMatrixShape, weight: Readonly<Record<string, boolean>>) {
  return {
    defines: { F16: true, ACT_F16: k.dtype === 'f16', FRAG16: k.frag === 16, SUBGROUPS4: k.subgroups === 4, ...weight },
    overrides: { SG: k.subgroupSize },
  };
}

/** One entry of `GPUAdapterInfo.subgroupMatrixConfigs` (not in @webgpu/types yet). */
interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

type InfoWithMatrices = GPUAdapterInfo & { subgroupMatrixConfigs?: readonly SubgroupMatrixConfig[]; subgroupMaxSize?: number };

/**
 * The shape our kernels use on this device, or null: the feature enabled, shader-f16 enabled, and
 * a config of f16 operands with an f32 result and M = N = K, 16 preferred over 8 (lavapipe lists
 * only 8). Subgroups of the adapter's largest size run it (a workgroup is one subgroup).
 */
export function subgroupMatrixShape(gpu: Gpu): SubgroupMatrixShape | null {
  if (!gpu.features.subgroupMatrix || !gpu.features.f16) return null;
  const info = gpu.adapterInfo as InfoWithMatrices;
  const subgroupSize = info.subgroupMaxSize;
  if (!subgroupSize) return null;
  const has = (f: number) =>
    [...(info.subgroupMatrixConfigs ?? [])].some(
      (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === f && c.N === f && c.K === f,
    );
  if (has(16)) return { frag: 16, subgroupSize, subgroups: 1 };
  if (has(8)) return { frag: 8, subgroupSize, subgroups: 1 };
  return null;
}

/**
 * `shape` with 4 subgroups per workgroup, or null where the device cannot run that: no
 * `subgroup_id`, or the workgroup's size or memory (2 x 8F x 32 halves + 4 F x F floats) over its
 * limits. Not the default: it waits for a GPU run of bench section q4matmul, which times both.
 */
export function fourSubgroups(gpu: Gpu, shape: SubgroupMatrixShape): SubgroupMatrixShape | null {
  const side = 8 * shape.frag;
  const bytes = 2 * side * 32 * 2 + 4 * shape.frag * shape.frag * 4;
  if (!gpu.features.subgroupId) return null;
  if (4 * shape.subgroupSize > gpu.limits.maxComputeInvocationsPerWorkgroup || bytes > gpu.limits.maxComputeWorkgroupStorageSize) return null;
  return { ...shape, subgroups: 4 };
}

/**
 * What the check on this device concluded: the shape that passed (usable by name) and whether it
 * is the default, or why there is none.
 */
export type SubgroupMatrixVerdict =
  | { shape: SubgroupMatrixShape; isDefault: boolean; reason?: string }
  | { shape: null; isDefault: false; reason: string };

const verdicts = new WeakMap<Gpu, SubgroupMatrixVerdict>();

export function markSubgroupMatrix(gpu: Gpu, verdict: SubgroupMatrixVerdict): void {
  verdicts.set(gpu, verdict);
}

/** The checked shape for this device, or null (not checked yet, absent, or failed its check). */
export function verifiedSubgroupMatrix(gpu: Gpu): SubgroupMatrixShape | null {
  return verdicts.get(gpu)?.shape ?? null;
}

/** Whether kernels use the subgroup-matrix variant by default on this device. */
export function subgroupMatrixIsDefault(gpu: Gpu): boolean {
  return verdicts.get(gpu)?.isDefault ?? false;
}

export function subgroupMatrixVerdict(gpu: Gpu): SubgroupMatrixVerdict | undefined {
  return verdicts.get(gpu);
}

/**
 * The subgroup-matrix shape a prefill wrapper (`q4MatMul`, `ggufMatMul`, `matmul`) runs, or null
 * for its tiled kernel. `requested.variant` `subgroupMatrix` asks for it, any other names a tiled
 * kernel; absent, it runs where the device's check made it the default and the product qualifies
 * (`unfit`: why it does not, or null). The shape is `requested.shape`, else the checked one.
 * Asking for it where it cannot run throws a KernelError naming `kernel`.
 */
export function subgroupMatrixToRun(
  gpu: Gpu,
  kernel: string,
  requested: { variant?: string; shape?: SubgroupMatrixShape },
  unfit: string | null = null,
): SubgroupMatrixShape | null {
  if (requested.variant ? requested.variant !== 'subgroupMatrix' : unfit || !subgroupMatrixIsDefault(gpu)) return null;
  const shape = requested.shape ?? verifiedSubgroupMatrix(gpu);
  if (!shape) throw new KernelError(kernel, 'subgroupMatrix: no checked subgroup-matrix shape on this device (see checkSubgroupMatrix)');
  if (unfit) throw new KernelError(kernel, `subgroupMatrix: ${unfit}`);
  return shape;
}
