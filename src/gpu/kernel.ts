/**
 * Kernel descriptors and the pipeline cache. A kernel is data: its WGSL source (one file in
 * `shaders/`), its storage bindings in `@binding` order, its uniform struct (field order = WGSL
 * struct order, every field 4 bytes), and a `specialize` rule from a few typed knobs (dtype,
 * workgroup size) to preprocessor defines and `override` constants. Pipelines are cached by
 * kernel name + knobs. Typed per-op wrappers in `src/kernels/` add shape checks and dispatch rules.
 */
import { KernelError } from '../errors.js';
import type { Gpu } from './device.js';
import type { UniformSlice } from './uniforms.js';
import { preprocess, type Defines } from './wgsl.js';

export type UniformType = 'u32' | 'i32' | 'f32';
export type Knobs = Readonly<Record<string, string | number | boolean>>;

export interface Binding {
  name: string;
  /** `read` -> read-only storage, `write` -> read_write storage. */
  access: 'read' | 'write';
}

export interface Specialization {
  defines?: Defines;
  overrides?: Readonly<Record<string, number>>;
}

export interface KernelDef<K extends Knobs, U extends Record<string, UniformType>> {
  name: string;
  source: string;
  entryPoint?: string;
  bindings: readonly Binding[];
  /** The params struct at `@binding(bindings.length)`; omit or `{}` for none. */
  uniforms: U;
  specialize(knobs: K): Specialization;
}

export interface Kernel<K extends Knobs, U extends Record<string, UniformType>> extends KernelDef<K, U> {
  readonly uniformFields: readonly (keyof U & string)[];
}

export function defineKernel<K extends Knobs, U extends Record<string, UniformType>>(def: KernelDef<K, U>): Kernel<K, U> {
  return { ...def, uniformFields: Object.keys(def.uniforms) as (keyof U & string)[] };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyKernel = Kernel<any, any>;

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Bind groups made for this pipeline, by their entries (`bindGroupKey`). */
  groups: Map<string, GPUBindGroup>;
}

/**
 * Bind groups kept per pipeline before the cache starts over: a decode step of Pixtral-12B needs
 * about 2 per layer for the most shared kernel (80), prefill chunks add a few hundred.
 */
const MAX_GROUPS_PER_PIPELINE = 1024;

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(b, id);
  }
  return id;
}

/**
 * Names a bind group by what it binds, in binding order: each storage binding's buffer identity
 * (with offset and size for a range) and the uniform slice.
 */
function bindGroupKey(buffers: readonly BufferArg[], uniform: UniformSlice | null): string {
  let key = '';
  for (const b of buffers) {
    // A whole buffer, bare or as { buffer } with no range: one binding, one key.
    if (b instanceof GPUBuffer || (!b.offset && b.size === undefined)) key += `${bufferId(b instanceof GPUBuffer ? b : b.buffer)};`;
    else key += `${bufferId(b.buffer)}:${b.offset ?? 0}:${b.size ?? -1};`;
  }
  return uniform ? `${key}${bufferId(uniform.buffer)}:${uniform.offset}:${uniform.size}` : key;
}

/** The knobs as written, in their own key order (a lookup key only; `cacheKey` is canonical). */
function knobsInOrder(knobs: Knobs): string {
  let key = '';
  for (const k in knobs) key += `${k}=${knobs[k]},`;
  return key;
}

export function cacheKey(name: string, knobs: Knobs): string {
  const parts = Object.keys(knobs)
    .sort()
    .map((k) => `${k}=${knobs[k]}`);
  return `${name}{${parts.join(',')}}`;
}

export class PipelineCache {
  private readonly cache = new Map<string, CachedPipeline>();
  /**
   * The same pipelines by the knobs in the order the caller wrote them (`knobsInOrder`): no sort
   * and no array per dispatch. A miss falls back to `cacheKey`, so two orders share one pipeline.
   */
  private readonly byCallOrder = new Map<AnyKernel, Map<string, CachedPipeline>>();
  /** While `plan` runs: the pipelines the recorded dispatches would need that are not built yet. */
  private planned: Map<string, { kernel: AnyKernel; knobs: Knobs }> | null = null;
  constructor(private readonly gpu: Gpu) {}

  /** True while `plan` records: `dispatch` only notes its pipeline and records nothing. */
  get planning(): boolean {
    return this.planned !== null;
  }

  /** Called by `dispatch` while planning. */
  note(kernel: AnyKernel, knobs: Knobs): void {
    const key = cacheKey(kernel.name, knobs);
    if (!this.cache.has(key)) this.planned?.set(key, { kernel, knobs });
  }

  /**
   * Runs `record` (which records dispatches as a real run would) without recording anything,
   * then compiles every pipeline those dispatches need, all at once with
   * `createComputePipelineAsync`, reporting each one done. A run that follows finds them built.
   */
  async plan(record: () => void, onCompiled?: (done: number, total: number) => void): Promise<number> {
    if (this.planned) throw new KernelError('pipeline-plan', 'plan() is already running');
    const planned = new Map<string, { kernel: AnyKernel; knobs: Knobs }>();
    this.planned = planned;
    try {
      record();
    } finally {
      this.planned = null;
    }
    let done = 0;
    const total = planned.size;
    onCompiled?.(0, total);
    await Promise.all(
      [...planned.values()].map(async ({ kernel, knobs }) => {
        await this.compile(kernel, knobs);
        onCompiled?.(++done, total);
      }),
    );
    return total;
  }

  get size(): number {
    return this.cache.size;
  }

  /** Synchronous get-or-create; compile errors surface through `gpu.check()` with the kernel name. */
  get<K extends Knobs, U extends Record<string, UniformType>>(kernel: Kernel<K, U>, knobs: K): CachedPipeline {
    let mine = this.byCallOrder.get(kernel);
    if (!mine) this.byCallOrder.set(kernel, (mine = new Map()));
    const quick = knobsInOrder(knobs);
    let hit = mine.get(quick);
    if (hit) return hit;
    const key = cacheKey(kernel.name, knobs);
    hit = this.cache.get(key);
    if (!hit) {
      hit = this.create(kernel, knobs, key);
      this.cache.set(key, hit);
    }
    mine.set(quick, hit);
    return hit;
  }

  /** Compiles ahead of use and throws a KernelError with the compiler's messages on failure. */
  async compile<K extends Knobs, U extends Record<string, UniformType>>(kernel: Kernel<K, U>, knobs: K): Promise<void> {
    const key = cacheKey(kernel.name, knobs);
    if (this.cache.has(key)) return;
    const device = this.gpu.device;
    const { code, constants } = this.source(kernel, knobs);
    // The scope keeps a compile error out of the uncaptured-error handler: it is reported here,
    // with the compiler's messages, instead of again on the next unrelated gpu.check().
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: key, code });
    const scoped = device.popErrorScope();
    const info = await module.getCompilationInfo();
    const invalid = await scoped;
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      throw new KernelError(kernel.name, errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n'));
    }
    if (invalid) throw new KernelError(kernel.name, invalid.message);
    const layout = this.layout(kernel, key);
    try {
      const pipeline = await device.createComputePipelineAsync({
        label: key,
        layout: device.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: kernel.entryPoint ?? 'main', constants },
      });
      this.cache.set(key, { pipeline, layout, groups: new Map() });
    } catch (e) {
      throw new KernelError(kernel.name, (e as Error).message);
    }
  }

  private source(kernel: AnyKernel, knobs: Knobs) {
    const spec = kernel.specialize(knobs);
    if (spec.defines?.F16 && !this.gpu.features.f16) {
      throw new KernelError(kernel.name, 'f16 variant requested but the device has no shader-f16');
    }
    let code: string;
    try {
      code = preprocess(kernel.source, spec.defines ?? {}, kernel.name);
    } catch (e) {
      throw new KernelError(kernel.name, (e as Error).message);
    }
    return { code, constants: { ...spec.overrides } };
  }

  private layout(kernel: AnyKernel, key: string): GPUBindGroupLayout {
    const entries: GPUBindGroupLayoutEntry[] = kernel.bindings.map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (kernel.uniformFields.length) {
      entries.push({ binding: entries.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    }
    return this.gpu.device.createBindGroupLayout({ label: key, entries });
  }

  private create<K extends Knobs, U extends Record<string, UniformType>>(kernel: Kernel<K, U>, knobs: K, key: string): CachedPipeline {
    const device = this.gpu.device;
    const { code, constants } = this.source(kernel, knobs);
    const module = device.createShaderModule({ label: key, code });
    const layout = this.layout(kernel, key);
    const pipeline = device.createComputePipeline({
      label: key,
      layout: device.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: kernel.entryPoint ?? 'main', constants },
    });
    return { pipeline, layout, groups: new Map() };
  }
}

/** A storage binding: a whole buffer, or a byte range of one (for split or packed tensors). */
export type BufferArg = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface DispatchArgs<U extends Record<string, UniformType>> {
  buffers: readonly BufferArg[];
  uniforms?: { [F in keyof U]: number };
  workgroups: readonly [number, number?, number?];
}

/**
 * Records one dispatch of `kernel` into `pass`. `buffers` follow `kernel.bindings` order.
 * Shape checks and the workgroup rule live in the typed wrapper that calls this.
 */
export function dispatch<K extends Knobs, U extends Record<string, UniformType>>(
  gpu: Gpu,
  pass: GPUComputePassEncoder,
  kernel: Kernel<K, U>,
  knobs: K,
  args: DispatchArgs<U>,
): void {
  if (args.buffers.length !== kernel.bindings.length) {
    throw new KernelError(kernel.name, `expected ${kernel.bindings.length} buffers, got ${args.buffers.length}`);
  }
  if (gpu.pipelines.planning) {
    gpu.pipelines.note(kernel, knobs);
    return;
  }
  const { pipeline, layout, groups } = gpu.pipelines.get(kernel, knobs);
  let uniform: UniformSlice | null = null;
  if (kernel.uniformFields.length) {
    if (!args.uniforms) throw new KernelError(kernel.name, 'missing uniforms');
    const { slice, view } = gpu.uniforms.reserve(kernel.uniformFields.length * 4);
    for (let i = 0; i < kernel.uniformFields.length; i++) {
      const f = kernel.uniformFields[i]!;
      const v = args.uniforms[f];
      if (v === undefined || Number.isNaN(v)) throw new KernelError(kernel.name, `uniform ${f} is ${v}`);
      const t = kernel.uniforms[f];
      const at = slice.offset + i * 4;
      if (t === 'f32') view.setFloat32(at, v, true);
      else if (t === 'i32') view.setInt32(at, v, true);
      else view.setUint32(at, v, true);
    }
    uniform = slice;
  }
  const [x, y = 1, z = 1] = args.workgroups;
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (x > max || y > max || z > max) {
    throw new KernelError(kernel.name, `dispatch ${x}x${y}x${z} exceeds ${max} workgroups per dimension`);
  }
  if (x === 0 || y === 0 || z === 0) return;
  // The same buffers and uniform slice (the arena hands out the same slices every decode step)
  // get the bind group made the first time: nothing is created per token.
  const gkey = bindGroupKey(args.buffers, uniform);
  let group = groups.get(gkey);
  if (!group) {
    if (groups.size >= MAX_GROUPS_PER_PIPELINE) groups.clear();
    const entries: GPUBindGroupEntry[] = args.buffers.map((b, i) => ({
      binding: i,
      resource: b instanceof GPUBuffer ? { buffer: b } : { buffer: b.buffer, offset: b.offset ?? 0, ...(b.size === undefined ? {} : { size: b.size }) },
    }));
    if (uniform) entries.push({ binding: entries.length, resource: uniform });
    group = gpu.device.createBindGroup({ label: kernel.name, layout, entries });
    groups.set(gkey, group);
    gpu.ledger.bindGroupsCreated++;
  }
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(x, y, z);
  gpu.ledger.dispatches++;
}

/**
 * Spreads `count` workgroups over x and y so no dimension exceeds the adapter limit (e.g. one
 * workgroup per lm_head row: 131072 > 65535). Shaders rebuild the index as `wid.x + wid.y * nwg.x`.
 */
export function grid(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}

/** What every typed kernel wrapper records into: the runtime and an open compute pass. */
export interface Ctx {
  gpu: Gpu;
  pass: GPUComputePassEncoder;
}

/** Records `fn`'s dispatches into one compute pass and submits it. */
export function record(gpu: Gpu, label: string, fn: (ctx: Ctx) => void): void {
  const enc = gpu.device.createCommandEncoder({ label });
  const pass = enc.beginComputePass({ label });
  fn({ gpu, pass });
  pass.end();
  gpu.submit([enc.finish()]);
}
