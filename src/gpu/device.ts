/**
 * WebGPU adapter and device acquisition: requests the limits that matter for large models and
 * the optional features that help (`shader-f16`, `subgroups`, `timestamp-query`), turns device
 * loss and uncaptured validation errors into typed errors, and owns the per-device caches
 * (pipelines, uniform arena). Everything works without any optional feature.
 */
import { DeviceLostError, KernelError, OutOfMemoryError, WebGPUUnavailableError } from '../errors.js';
import { PipelineCache } from './kernel.js';
import { UniformArena } from './uniforms.js';
import { GpuLedger } from './ledger.js';

export interface GpuFeatures {
  /** `shader-f16`: WGSL `f16` arithmetic and storage. */
  f16: boolean;
  /** `subgroups`: subgroupAdd and friends for reductions. */
  subgroups: boolean;
  /** `timestamp-query`: GPU timings in the benchmark. */
  timestampQuery: boolean;
  /**
   * `chromium-experimental-subgroup-matrix`: the adapter's matrix units in WGSL (Chrome/Dawn with
   * unsafe APIs; Vulkan cooperative matrices, Apple GPUs). Its shapes: `adapterInfo.subgroupMatrixConfigs`.
   */
  subgroupMatrix: boolean;
  /** WGSL's `subgroup_id` builtin (a language feature: `navigator.gpu.wgslLanguageFeatures`), with `subgroups`. */
  subgroupId: boolean;
}

export interface GpuOptions {
  powerPreference?: GPUPowerPreference;
  /** Ignore `shader-f16` even when present (tests both paths on f16-capable adapters). */
  disableF16?: boolean;
  /** Ignore `subgroups` even when present. */
  disableSubgroups?: boolean;
  /** Ignore `chromium-experimental-subgroup-matrix` even when present (prefill keeps its tiled kernels). */
  disableSubgroupMatrix?: boolean;
}

/** Limits requested at their adapter maximum when the adapter offers more than the default. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export function gpuAvailable(): boolean {
  return typeof navigator !== 'undefined' && 'gpu' in navigator && !!navigator.gpu;
}

async function requestAdapter(powerPreference: GPUPowerPreference = 'high-performance'): Promise<GPUAdapter> {
  if (!gpuAvailable()) {
    throw new WebGPUUnavailableError(
      'WebGPU is not available in this browser. Use a recent Chrome/Edge (113+), or Chromium with --enable-unsafe-webgpu; Firefox and Safari need WebGPU enabled.',
    );
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new WebGPUUnavailableError('navigator.gpu.requestAdapter() returned no adapter (GPU blocklisted or disabled).');
  return adapter;
}

/** One line naming the adapter, for logs: vendor/architecture, f16, max buffer. */
export async function describeAdapter(): Promise<string> {
  const adapter = await requestAdapter();
  const i = adapter.info;
  const f16 = adapter.features.has('shader-f16') ? 'yes' : 'no';
  const sub = adapter.features.has('subgroups') ? 'yes' : 'no';
  const sgm = adapter.features.has('chromium-experimental-subgroup-matrix') ? 'yes' : 'no';
  const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;
  return `adapter vendor=${i.vendor || '?'} architecture=${i.architecture || '?'} device=${i.device || '?'} description="${i.description || ''}" shader-f16=${f16} subgroups=${sub} subgroup-matrix=${sgm} maxBufferSize=${mib(adapter.limits.maxBufferSize)} maxStorageBinding=${mib(adapter.limits.maxStorageBufferBindingSize)}`;
}

export class Gpu {
  readonly device: GPUDevice;
  readonly adapterInfo: GPUAdapterInfo;
  readonly features: GpuFeatures;
  readonly limits: GPUSupportedLimits;
  readonly pipelines: PipelineCache;
  readonly uniforms: UniformArena;
  /** Dispatches, submits and live / peak buffer bytes, counted by the runtime. */
  readonly ledger = new GpuLedger();
  /** Resolves when the device is lost; never rejects. */
  readonly lost: Promise<DeviceLostError>;
  private lostError: DeviceLostError | null = null;
  private pendingError: KernelError | OutOfMemoryError | null = null;
  /**
   * Bytes of buffers created so far (`createBuffer` in tensor.ts reports them), and the last
   * one: an out-of-memory error reports what was asked for, not a placeholder.
   */
  private allocatedBytes = 0;
  private lastAllocation: { label: string; bytes: number } | null = null;

  private constructor(device: GPUDevice, info: GPUAdapterInfo, features: GpuFeatures) {
    this.device = device;
    this.adapterInfo = info;
    this.features = features;
    this.limits = device.limits;
    this.pipelines = new PipelineCache(this);
    this.uniforms = new UniformArena(device, this.ledger);
    this.lost = device.lost.then((l) => {
      this.lostError = new DeviceLostError(l.reason ?? 'unknown', l.message || 'no message');
      return this.lostError;
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (this.pendingError) return; // keep the first: later ones are usually consequences
      // "[Invalid X] is invalid due to a previous error": the cause was reported already (here or
      // in an error scope); on its own, arriving after check() took the cause, it would be blamed
      // on whatever runs next.
      if (/invalid due to a previous error/i.test(err.message)) return;
      const last = this.lastAllocation;
      this.pendingError =
        err instanceof GPUOutOfMemoryError
          ? new OutOfMemoryError(
              last?.bytes ?? 0,
              `GPU out of memory${last ? ` (last allocation: ${last.label}, ${last.bytes} bytes; ${this.allocatedBytes} bytes allocated in all)` : ''}: ${err.message}`,
            )
          : new KernelError(kernelFromMessage(err.message), err.message);
    });
  }

  static async create(opts: GpuOptions = {}): Promise<Gpu> {
    const adapter = await requestAdapter(opts.powerPreference);
    const requiredFeatures: GPUFeatureName[] = [];
    const want = (name: string, on: boolean) => {
      if (on && adapter.features.has(name)) {
        requiredFeatures.push(name as GPUFeatureName);
        return true;
      }
      return false;
    };
    const subgroups = want('subgroups', !opts.disableSubgroups);
    const features: GpuFeatures = {
      f16: want('shader-f16', !opts.disableF16),
      subgroups,
      timestampQuery: want('timestamp-query', true),
      subgroupMatrix: want('chromium-experimental-subgroup-matrix', !opts.disableSubgroupMatrix),
      subgroupId: subgroups && !!navigator.gpu.wgslLanguageFeatures?.has('subgroup_id'),
    };
    const requiredLimits: Record<string, number> = {};
    for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'pixtral-webgpu' });
    } catch (e) {
      throw new WebGPUUnavailableError(`requestDevice failed: ${(e as Error).message}`, { cause: e });
    }
    return new Gpu(device, adapter.info, features);
  }

  /**
   * A CPU implementation (SwiftShader, or any fallback adapter): kernels pick work splits where a
   * thread streams whole rows, and benchmarks run fewer repetitions.
   */
  get isSoftware(): boolean {
    // Read once: kernel wrappers ask on every dispatch, and dawn.node's adapterInfo getters are native calls.
    return (this.software ??= this.adapterInfo.architecture === 'swiftshader' || this.adapterInfo.isFallbackAdapter === true);
  }
  private software: boolean | undefined;

  get isLost(): boolean {
    return this.lostError !== null;
  }

  /** Throws the device-loss or first uncaptured error, if any, and clears the latter. */
  check(): void {
    if (this.lostError) throw this.lostError;
    const e = this.pendingError;
    if (e) {
      this.pendingError = null;
      throw e;
    }
  }

  submit(commands: GPUCommandBuffer[]): void {
    this.check();
    this.ledger.submits++;
    this.uniforms.flush();
    this.device.queue.submit(commands);
    this.uniforms.reset();
  }

  /** Waits for submitted work; rejects with DeviceLostError instead of hanging if the device dies. */
  async sync(): Promise<void> {
    const lost = this.lost.then((e) => Promise.reject(e));
    await Promise.race([this.device.queue.onSubmittedWorkDone(), lost]);
    // Validation errors of the submitted work can be delivered after the work-done callback; an
    // empty error scope round trip orders after them, so check() sees the first error of this
    // batch (and its consequences are dropped as it is pending) instead of a later call seeing
    // them attributed to unrelated work.
    this.device.pushErrorScope('validation');
    await Promise.race([this.device.popErrorScope(), lost]);
    this.check();
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes and throws a typed error naming
   * `label` if either fires. For allocation and pipeline creation, where the cost is negligible.
   */
  async scoped<T>(label: string, fn: () => T): Promise<T> {
    const before = this.allocatedBytes;
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const out = fn();
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (oom) {
      const asked = this.allocatedBytes - before;
      throw new OutOfMemoryError(asked, `GPU out of memory in ${label}: ${asked} bytes asked for (${this.allocatedBytes} bytes allocated in all): ${oom.message}`);
    }
    if (validation) throw new KernelError(label, validation.message);
    return out;
  }

  /** Counts a buffer about to be created (see `allocatedBytes`). */
  noteAllocation(label: string, bytes: number): void {
    this.allocatedBytes += bytes;
    this.lastAllocation = { label, bytes };
  }

  destroy(): void {
    this.uniforms.destroy();
    this.device.destroy();
  }
}

/**
 * Chromium puts labels in messages as `[ComputePipeline "name{knobs}"]`, `[Invalid ComputePipeline
 * "..."]` or `[ShaderModuleDescriptor ""name{knobs}""]`; pipelines and shader modules are labelled
 * with the cache key, bind groups with the kernel name. Returns the kernel name (knobs stripped),
 * preferring the most specific object: a message about a dispatch names both the pipeline and the
 * pass, whose label is only the recording's.
 */
export function kernelFromMessage(msg: string): string {
  for (const kind of ['ComputePipeline', 'ShaderModule', 'BindGroup', 'ComputePassEncoder']) {
    const m = new RegExp(`\\[(?:Invalid )?${kind}[^"\\]]*"+([^"]+)"+\\]`).exec(msg);
    if (m) return m[1]!.replace(/\{[^{}]*\}$/, '');
  }
  return 'unknown';
}
