/**
 * Dense matrix-vector product for decode (batch 1): `y[N] = W[N, K] x[K]` with f32 or f16
 * weights (f16 read as packed u32, so it runs without shader-f16). The tiled matmul wastes 63 of
 * 64 tile rows at M = 1; this kernel reads each weight once, which is what decode is bound by.
 * Dispatches once per weight row part, writing at the part's row offset. `matvecGateUp` is the
 * decode fusion of a gated MLP's first half: silu(gate x) * up x in one dispatch.
 */
import { defineKernel, dispatch, grid, type Ctx } from '../gpu/kernel.js';
import type { Gpu } from '../gpu/device.js';
import type { Tensor } from '../gpu/tensor.js';
import { KernelError } from '../errors.js';
import type { MatWeight } from './matmul.js';
import source from '../../shaders/matvec.wgsl?raw';

export interface MatVecConfig {
  wg: number;
  /** Threads per row: 1 (CPU adapters) or a power of two dividing wg (GPUs). */
  tpr: number;
}

/** CPU adapters (SwiftShader): one thread per row; GPUs: 32 threads per row. */
export function defaultMatVecConfig(gpu: Gpu): MatVecConfig {
  return gpu.isSoftware ? { wg: 64, tpr: 1 } : { wg: 256, tpr: 32 };
}

export const matvecKernel = defineKernel({
  name: 'matvec',
  source,
  bindings: [
    { name: 'w', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
  ],
  uniforms: { K4: 'u32', rows: 'u32', yOffset: 'u32' },
  specialize: (k: { act: 'f32' | 'f16'; weight: 'f32' | 'f16'; wg: number; tpr: number }) => ({
    defines: { F16: k.act === 'f16', WEIGHT_F16: k.weight === 'f16' },
    overrides: { WG: k.wg, TPR: k.tpr },
  }),
});

/** GATE_UP variant: y = silu(W x) * W1 x (binding 3: the up weight). */
export const matvecGateUpKernel = defineKernel({
  name: 'matvec_gate_up',
  source,
  bindings: [
    { name: 'w', access: 'read' },
    { name: 'x', access: 'read' },
    { name: 'y', access: 'write' },
    { name: 'w1', access: 'read' },
  ],
  uniforms: { K4: 'u32', rows: 'u32', yOffset: 'u32' },
  specialize: (k: { act: 'f32' | 'f16'; weight: 'f32' | 'f16'; wg: number; tpr: number }) => ({
    defines: { F16: k.act === 'f16', WEIGHT_F16: k.weight === 'f16', GATE_UP: true },
    overrides: { WG: k.wg, TPR: k.tpr },
  }),
});

/** Whether `matvec` handles this weight (K a multiple of 4). */
export function matvecSupported(w: MatWeight): boolean {
  return w.shape[1] % 4 === 0;
}

/** y [N] = W [N, K] x [K]; x and y the same activation dtype. */
export function matvec(ctx: Ctx, w: MatWeight, x: Tensor, y: Tensor, config = defaultMatVecConfig(ctx.gpu)): void {
  const [N, K] = w.shape;
  const fail = (msg: string): never => {
    throw new KernelError('matvec', `${w.label} x ${x.label} -> ${y.label}: ${msg}`);
  };
  if (K % 4) fail(`K=${K} is not a multiple of 4`);
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) fail(`dtypes ${x.dtype} -> ${y.dtype}`);
  if (x.numel < K) fail(`x [${x.shape}] shorter than K=${K}`);
  if (y.numel < N) fail(`y [${y.shape}] shorter than N=${N}`);
  const { wg, tpr } = config;
  if (wg % tpr || (tpr & (tpr - 1)) !== 0) fail(`bad config wg=${wg} tpr=${tpr}`);
  const rowsPerWg = wg / tpr;
  for (const part of w.parts) {
    dispatch(ctx.gpu, ctx.pass, matvecKernel, { act: x.dtype, weight: w.dtype, wg, tpr }, {
      buffers: [part.buffer, x.buffer, y.buffer],
      uniforms: { K4: K / 4, rows: part.rows, yOffset: part.rowStart },
      workgroups: grid(Math.ceil(part.rows / rowsPerWg), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
  }
}

/** Whether `matvecGateUp` takes these: same shape and dtype, K % 4 == 0, one row part each. */
export function matvecGateUpSupported(gate: MatWeight, up: MatWeight): boolean {
  return (
    matvecSupported(gate) && gate.shape[0] === up.shape[0] && gate.shape[1] === up.shape[1] &&
    gate.dtype === up.dtype && gate.parts.length === 1 && up.parts.length === 1
  );
}

/**
 * y [n] = silu((Wg x)[n]) * (Wu x)[n] for n < N in one dispatch (decode), silu(g) = g / (1 + e^-g).
 * gate, up: [N, K] of the same dtype, one row part each (`matvecGateUpSupported`); x: [>= K],
 * y: [>= N], the same activation dtype. In f32 bit-identical to matvec, matvec, siluMul.
 */
export function matvecGateUp(ctx: Ctx, gate: MatWeight, up: MatWeight, x: Tensor, y: Tensor, config = defaultMatVecConfig(ctx.gpu)): void {
  const [N, K] = gate.shape;
  const fail = (msg: string): never => {
    throw new KernelError('matvec_gate_up', `silu(${gate.label} x) * ${up.label} x -> ${y.label}: ${msg}`);
  };
  if (!matvecGateUpSupported(gate, up)) fail(`needs the same shape and dtype, K % 4 == 0 and one row part each: [${gate.shape}] ${gate.dtype} in ${gate.parts.length}, [${up.shape}] ${up.dtype} in ${up.parts.length}`);
  if (x.dtype !== y.dtype || (x.dtype !== 'f32' && x.dtype !== 'f16')) fail(`dtypes ${x.dtype} -> ${y.dtype}`);
  if (x.numel < K) fail(`x [${x.shape}] shorter than K=${K}`);
  if (y.numel < N) fail(`y [${y.shape}] shorter than N=${N}`);
  const { wg, tpr } = config;
  if (wg % tpr || (tpr & (tpr - 1)) !== 0) fail(`bad config wg=${wg} tpr=${tpr}`);
  dispatch(ctx.gpu, ctx.pass, matvecGateUpKernel, { act: x.dtype, weight: gate.dtype, wg, tpr }, {
    buffers: [gate.parts[0]!.buffer, x.buffer, y.buffer, up.parts[0]!.buffer],
    uniforms: { K4: K / 4, rows: N, yOffset: 0 },
    workgroups: grid(Math.ceil(N / (wg / tpr)), ctx.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
