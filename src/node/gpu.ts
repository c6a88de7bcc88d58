/**
 * WebGPU in Node from Dawn (the npm `webgpu` package): `installWebGPU()` creates a Dawn
 * instance, puts the WebGPU globals (GPUBufferUsage, GPUBuffer, ...) and `navigator.gpu` on
 * `globalThis`, and pins the adapter, so everything downstream (`Gpu.create`, the engine) calls
 * `navigator.gpu.requestAdapter()` as in a browser and gets the chosen one.
 *
 * Adapter choice (`adapter` option, else the `PIXTRAL_WEBGPU_ADAPTER` environment variable):
 * unset = the first Dawn adapter (high-performance first); `software` = Dawn's fallback (CPU)
 * adapter; a number = that entry of `listAdapters()`; anything else = the first adapter whose
 * name contains it (Dawn's `adapter=` toggle). No usable adapter is a `WebGPUUnavailableError`
 * that says what to install. Nothing happens on import.
 */
import { WebGPUUnavailableError } from '../errors.js';

/** The environment variable that picks the adapter when no `adapter` option is given. */
export const ADAPTER_ENV = 'PIXTRAL_WEBGPU_ADAPTER';

/**
 * Dawn toggles by default: `allow_unsafe_apis` (timestamp queries inside passes, used by the
 * benchmark) and unquantised timestamps (Dawn rounds them otherwise, spoiling kernel timings).
 */
export const DEFAULT_DAWN_FLAGS = ['enable-dawn-features=allow_unsafe_apis,disable-dawn-features=timestamp_quantization'];

const INSTALL_HINT =
  'WebGPU in Node needs the `webgpu` npm package (installed with pixtral-webgpu as an optional dependency) ' +
  'and a Vulkan driver (Linux), Metal (macOS) or D3D12 (Windows). On Debian/Ubuntu without a GPU: ' +
  '`apt-get install mesa-vulkan-drivers` (lavapipe; Debian 12 needs it from bookworm-backports, Mesa 25+); ' +
  'on a GPU server: the vendor driver with its Vulkan ICD (e.g. NVIDIA driver + libnvidia-gl / Vulkan loader).';

export interface NodeWebGPUOptions {
  /** `'software'`, an index into `listAdapters()`, or part of an adapter name; default: `PIXTRAL_WEBGPU_ADAPTER`, else the first. */
  adapter?: string | number;
  /** Dawn instance toggles passed to `create()`; default `DEFAULT_DAWN_FLAGS`. */
  dawnFlags?: string[];
}

/** One adapter Dawn can see, as listed by Dawn itself. */
export interface DawnAdapterEntry {
  /** Dawn backend: `vulkan`, `metal`, `d3d12`, ... */
  backend: string;
  name: string;
}

export interface InstalledWebGPU {
  /** The `navigator.gpu` that was installed: requestAdapter() returns the chosen adapter. */
  gpu: GPU;
  /** The chosen adapter's info (a fresh adapter is handed out per requestAdapter call). */
  info: GPUAdapterInfo;
  /** The selection that was applied, e.g. `first`, `software`, `name "llvmpipe"`. */
  selection: string;
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: object;
}

let installed: { key: string; result: InstalledWebGPU } | undefined;

async function loadDawn(): Promise<DawnModule> {
  try {
    return (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    throw new WebGPUUnavailableError(`could not load Dawn (npm \`webgpu\`): ${(e as Error).message}. ${INSTALL_HINT}`, { cause: e });
  }
}

/**
 * The adapters Dawn can see. Dawn has no enumeration API; asked for an adapter name that cannot
 * exist, it refuses with the list of available ones, which is parsed here.
 */
export async function listAdapters(dawnFlags: string[] = DEFAULT_DAWN_FLAGS): Promise<DawnAdapterEntry[]> {
  const dawn = await loadDawn();
  try {
    const gpu = dawn.create([...dawnFlags, 'adapter=\u0000pixtral-webgpu-list-adapters']);
    await gpu.requestAdapter();
  } catch (e) {
    const entries: DawnAdapterEntry[] = [];
    for (const m of String((e as Error).message).matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) {
      entries.push({ backend: m[1]!, name: m[2]! });
    }
    return entries;
  }
  return [];
}

function describe(entries: DawnAdapterEntry[]): string {
  return entries.length ? entries.map((a, i) => `${i}: ${a.name} (${a.backend})`).join('; ') : 'none';
}

/**
 * Installs Dawn's WebGPU into this Node process and pins the adapter. Idempotent for the same
 * choice; a different choice replaces the installed `navigator.gpu`.
 */
export async function installWebGPU(opts: NodeWebGPUOptions = {}): Promise<InstalledWebGPU> {
  const choice = String(opts.adapter ?? process.env[ADAPTER_ENV] ?? '').trim();
  const dawnFlags = opts.dawnFlags ?? DEFAULT_DAWN_FLAGS;
  const key = JSON.stringify([choice, dawnFlags]);
  if (installed?.key === key) return installed.result;

  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals);

  const flags = [...dawnFlags];
  let pinned: GPURequestAdapterOptions = {};
  let selection = 'first';
  if (choice === 'software') {
    pinned = { forceFallbackAdapter: true };
    selection = 'software';
  } else if (/^\d+$/.test(choice)) {
    const entries = await listAdapters(dawnFlags);
    const entry = entries[Number(choice)];
    if (!entry) {
      throw new WebGPUUnavailableError(`${ADAPTER_ENV}/adapter = ${choice}: no adapter with that index (Dawn sees ${describe(entries)}).`);
    }
    flags.push(`backend=${entry.backend}`, `adapter=${entry.name}`);
    selection = `index ${choice}: ${entry.name}`;
  } else if (choice) {
    flags.push(`adapter=${choice}`);
    selection = `name "${choice}"`;
  }

  let base: GPU;
  try {
    base = dawn.create(flags);
  } catch (e) {
    throw new WebGPUUnavailableError(`Dawn refused flags ${JSON.stringify(flags)}: ${(e as Error).message}`, { cause: e });
  }
  const request = async (o: GPURequestAdapterOptions = {}): Promise<GPUAdapter | null> => {
    try {
      return await base.requestAdapter({ powerPreference: 'high-performance', ...o, ...pinned });
    } catch (e) {
      // Dawn throws (rather than resolving null) when the adapter= toggle matches nothing.
      const entries = await listAdapters(dawnFlags);
      throw new WebGPUUnavailableError(
        `no WebGPU adapter matches ${selection} (Dawn sees ${describe(entries)}): ${(e as Error).message.split('\n')[0]}`,
        { cause: e },
      );
    }
  };
  // Dawn discovers adapters on a plain request only: a first request that forces the fallback
  // adapter resolves null even where one exists (seen with lavapipe), so discover first.
  if (pinned.forceFallbackAdapter) await base.requestAdapter();
  const probe = await request();
  if (!probe) {
    throw new WebGPUUnavailableError(`Dawn found no usable WebGPU adapter (selection: ${selection}). ${INSTALL_HINT}`);
  }

  // A GPU whose requestAdapter always applies the pinned choice: an adapter can make only one
  // device, so each caller gets a fresh adapter with the same selection.
  const gpu = {
    requestAdapter: request,
    getPreferredCanvasFormat: () => base.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return base.wgslLanguageFeatures;
    },
    __brand: 'GPU',
  } as unknown as GPU;
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav && Object.isExtensible(nav)) {
    Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: `node ${process.version}` }, configurable: true, writable: true });
  }
  const result: InstalledWebGPU = { gpu, info: probe.info, selection };
  installed = { key, result };
  return result;
}
