/**
 * The benchmark page: runs the selected sections in order on one `Gpu` and hands the merged
 * result to the driver (`bench/run.ts`, through the functions it exposes) or, opened by hand,
 * prints it on the page. `?only=a,b` selects sections. To add a section, write
 * `bench/sections/<name>.ts` exporting `run(gpu): Promise<object>` and add it to SECTIONS.
 * A section's returned fields are merged into the top level of the result JSON. `runSections`
 * is shared with bench/node.ts (the same sections on Dawn in Node, for machines without a browser).
 */
import { Gpu } from '../../src/gpu/device.js';
import * as copy from '../sections/copy.js';
import * as q4matvec from '../sections/q4matvec.js';
import * as q4matmul from '../sections/q4matmul.js';
import * as q4tune from '../sections/q4tune.js';
import * as q4check from '../sections/q4check.js';
import * as matmul from '../sections/matmul.js';
import * as model from '../sections/model.js';
import * as mistral3 from '../sections/mistral3.js';
import * as attention from '../sections/attention.js';
import * as gguf from '../sections/gguf.js';
import * as e2e from '../sections/e2e.js';
import * as grammar from '../sections/grammar.js';
import { timingMethod } from '../sections/timing.js';

export interface Section {
  name: string;
  run(gpu: Gpu, log: (line: string) => void): Promise<object>;
}

/** Every section, in run order (`copy` first: other sections report fractions of it). */
export const SECTIONS: Section[] = [
  { name: 'copy', run: copy.run },
  { name: 'q4matvec', run: q4matvec.run },
  { name: 'q4matmul', run: q4matmul.run },
  { name: 'q4tune', run: q4tune.run },
  { name: 'q4check', run: q4check.run },
  { name: 'gguf', run: gguf.run },
  { name: 'attention', run: attention.run },
  { name: 'matmul', run: (gpu) => matmul.run(gpu) },
  { name: 'model', run: (gpu) => model.run(gpu) },
  { name: 'mistral3', run: (gpu) => mistral3.run(gpu) },
  { name: 'e2e', run: e2e.run },
  { name: 'grammar', run: grammar.run },
];

interface Driver {
  __benchLog?: (line: string) => Promise<void>;
  __benchReport?: (json: string) => Promise<void>;
}
const driver = globalThis as unknown as Driver;

function log(line: string): void {
  document.getElementById('log')!.textContent += `${line}\n`;
  void driver.__benchLog?.(line);
}

/** Runs the named sections (all when `names` is empty) on `gpu` and merges their results. */
export async function runSections(gpu: Gpu, names: string[], log: (line: string) => void): Promise<Record<string, unknown>> {
  if (!names.length) names = SECTIONS.map((s) => s.name);
  const unknown = names.filter((n) => !SECTIONS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}`);
  const info = gpu.adapterInfo as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: readonly { componentType: string; resultComponentType: string; M: number; N: number; K: number }[];
  };
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    adapter: {
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      f16: gpu.features.f16, subgroups: gpu.features.subgroups, subgroupMinSize: info.subgroupMinSize,
      subgroupMaxSize: info.subgroupMaxSize, timestampQuery: gpu.features.timestampQuery,
      subgroupMatrix: gpu.features.subgroupMatrix,
      // Copied field by field: Dawn's config objects serialise as {}.
      subgroupMatrixConfigs: [...(info.subgroupMatrixConfigs ?? [])].map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`),
      maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize,
    },
    timing: timingMethod(gpu),
    sections: names,
  };
  const seconds: Record<string, number> = {};
  const errors: Record<string, string> = {};
  for (const section of SECTIONS.filter((s) => names.includes(s.name))) {
    log(`section ${section.name}...`);
    const t0 = performance.now();
    try {
      Object.assign(result, await section.run(gpu, (line) => log(`  ${section.name}: ${line}`)));
    } catch (e) {
      errors[section.name] = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      log(`section ${section.name} failed: ${errors[section.name]}`);
    }
    seconds[section.name] = (performance.now() - t0) / 1000;
  }
  result.sectionSeconds = seconds;
  if (Object.keys(errors).length) result.errors = errors;
  return result;
}

async function main(): Promise<object> {
  const only = new URLSearchParams(location.search).get('only');
  const names = only ? only.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const gpu = await Gpu.create();
  const result = await runSections(gpu, names, log);
  result.userAgent = navigator.userAgent;
  gpu.destroy();
  return result;
}

// Imported without a DOM (bench/node.ts), the page only provides SECTIONS.
if (typeof document !== 'undefined') void main().then(
  (r) => {
    const json = JSON.stringify(r, null, 2);
    if (driver.__benchReport) void driver.__benchReport(json);
    else log(json);
  },
  (e: unknown) => {
    const json = JSON.stringify({ fatal: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    if (driver.__benchReport) void driver.__benchReport(json);
    else log(json);
  },
);
