/**
 * `pixtral-webgpu info <model>`: what a converted model is (manifest: name, type, dtype,
 * tokenizer, tensors, shards, bytes, the main dimensions, KV-cache bytes per token) and what the
 * current WebGPU adapter offers (Dawn; `--adapter` or `PIXTRAL_WEBGPU_ADAPTER` picks it): its
 * name, shader-f16, subgroups and the limits that bound a model. Reads only the manifest (a URL's
 * is fetched, nothing else); loads no weights. `--json` prints one object. A machine without a
 * usable adapter still gets the model part, with the adapter's error and what to install.
 * A llama.cpp GGUF (`info model.gguf --mmproj mmproj.gguf`) gets its header facts instead
 * (`info-gguf.ts`). Exit codes: 0, 1 (the model cannot be read), 2 usage error.
 */
import { formatBytes, NetworkError, WebGPUUnavailableError } from '../src/errors.js';
import type { Manifest } from '../src/weights/manifest.js';
import { normalizeBaseUrl } from '../src/weights/store.js';
import { isLocalModel, localModelDir, parseManifestBytes, readManifestFile } from '../src/node/files.js';
import { installWebGPU } from '../src/node/gpu.js';
import { modelDimensions } from './model-dimensions.js';
import { checkGgufArgs, isGgufPath, parseCommandArgs, UsageError } from './usage.js';
import { ggufLines, ggufReport } from './info-gguf.js';

export const INFO_HELP = `Usage: pixtral-webgpu info <model> [--json] [--adapter A]
       pixtral-webgpu info model.gguf [--mmproj mmproj.gguf] [--json] [--adapter A]

Prints a converted model's manifest summary (name, type, dtype, tokenizer, sizes, dimensions)
and what the current WebGPU adapter offers (shader-f16, subgroups, limits). <model> is a folder
made by "pixtral-webgpu convert" or its http(s) URL (only manifest.json is fetched). A
llama.cpp GGUF (path or URL) gets its header's facts: architecture, quant mix, size, tensors,
and with --mmproj the pair's dimensions; no tensor byte is read.

Options:
  --mmproj F    the mmproj GGUF of a text GGUF
  --json        print one JSON object
  --adapter A   WebGPU adapter: software, an index, or part of its name
  -h, --help    this help
`;

async function readManifest(model: string): Promise<{ manifest: Manifest; where: string }> {
  if (isLocalModel(model)) {
    const dir = localModelDir(model);
    return { manifest: (await readManifestFile(dir)).manifest, where: dir };
  }
  const url = new URL('manifest.json', normalizeBaseUrl(model)).href;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new NetworkError(`${url}: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (!res.ok) throw new NetworkError(`${url}: HTTP ${res.status}`, res.status);
  return { manifest: parseManifestBytes(new Uint8Array(await res.arrayBuffer()), model), where: url };
}

const LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupsPerDimension'] as const;

export interface AdapterReport {
  selection: string;
  vendor: string;
  architecture: string;
  description: string;
  features: { shaderF16: boolean; subgroups: boolean; timestampQuery: boolean; subgroupMatrix: boolean };
  limits: Record<(typeof LIMITS)[number], number>;
}

async function adapterReport(adapter?: string): Promise<AdapterReport> {
  const { gpu, selection } = await installWebGPU({ adapter });
  const a = await gpu.requestAdapter();
  if (!a) throw new WebGPUUnavailableError(`Dawn returned no adapter for ${selection}`);
  const limits = Object.fromEntries(LIMITS.map((k) => [k, a.limits[k]])) as AdapterReport['limits'];
  return {
    selection,
    vendor: a.info.vendor,
    architecture: a.info.architecture,
    description: a.info.description,
    features: {
      shaderF16: a.features.has('shader-f16'),
      subgroups: a.features.has('subgroups'),
      timestampQuery: a.features.has('timestamp-query'),
      subgroupMatrix: a.features.has('chromium-experimental-subgroup-matrix'),
    },
    limits,
  };
}

function modelReport(m: Manifest, where: string) {
  const c = m.config;
  return {
    source: where,
    name: m.name,
    modelType: c.modelType,
    dtype: m.dtype,
    tokenizer: m.tokenizer ? { file: m.tokenizer.file, kind: m.tokenizer.kind, version: m.tokenizer.version ?? null } : null,
    tensors: m.tensors.length,
    shards: m.shards.length,
    totalBytes: m.totalBytes + (m.tokenizer?.byteLength ?? 0),
    weightBytes: m.totalBytes,
    ...modelDimensions(c),
  };
}

/** `info`'s text lines for a converted model's manifest report. */
function manifestLines(model: ReturnType<typeof modelReport>): string[] {
  const t = model.text;
  return [
    `model       ${model.name} (${model.modelType}, ${model.dtype}) from ${model.source}`,
    `files       ${model.shards} shard${model.shards === 1 ? '' : 's'}, ${model.tensors} tensors, ${formatBytes(model.totalBytes)}` +
      (model.tokenizer ? `, tokenizer ${model.tokenizer.file} (${model.tokenizer.kind}${model.tokenizer.version ? ` ${model.tokenizer.version}` : ''})` : ', no tokenizer'),
    `vision      hidden ${model.vision.hidden}, ${model.vision.layers} layers, ${model.vision.heads} heads, patch ${model.vision.patch}, image size ${model.vision.imageSize}, merge ${model.spatialMerge}`,
    `text        hidden ${t.hidden}, ${t.layers} layers, ${t.heads} heads / ${t.kvHeads} kv, head dim ${t.headDim}, vocab ${t.vocab}, max positions ${t.maxPositions}`,
    `kv cache    ${formatBytes(model.kvBytesPerToken.f16)} per token (f16), ${formatBytes(model.kvBytesPerToken.f32)} (f32)`,
  ];
}

/** Runs `info`; resolves to the exit code. */
export async function runInfo(argv: string[]): Promise<number> {
  let v, pos;
  try {
    ({ values: v, positionals: pos } = parseCommandArgs(argv, {
      json: { type: 'boolean' },
      adapter: { type: 'string' },
      mmproj: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    }));
    if (!v.help && pos.length !== 1) throw new UsageError(`info needs exactly one <model> (got ${pos.length})`);
    if (!v.help && v.mmproj !== undefined) checkGgufArgs(pos[0]!, v.mmproj);
  } catch (e) {
    process.stderr.write(`pixtral-webgpu info: ${(e as Error).message}\nRun "pixtral-webgpu info --help" for usage.\n`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(INFO_HELP);
    return 0;
  }
  let model;
  try {
    if (isGgufPath(pos[0]!)) model = await ggufReport(pos[0]!, v.mmproj);
    else {
      const { manifest, where } = await readManifest(pos[0]!);
      model = modelReport(manifest, where);
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`pixtral-webgpu: error: ${msg.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  }
  let adapter: AdapterReport | null = null;
  let adapterError: string | null = null;
  try {
    adapter = await adapterReport(v.adapter);
  } catch (e) {
    adapterError = (e as Error).message;
  }
  if (v.json) {
    process.stdout.write(`${JSON.stringify({ model, adapter, adapterError })}\n`);
    return 0;
  }
  const lines = 'format' in model ? ggufLines(model) : manifestLines(model);
  if (adapter) {
    const f = adapter.features;
    lines.push(
      `adapter     ${adapter.description || adapter.vendor} (${adapter.vendor}/${adapter.architecture}; ${adapter.selection})`,
      `features    shader-f16=${f.shaderF16 ? 'yes' : 'no'} subgroups=${f.subgroups ? 'yes' : 'no'} timestamp-query=${f.timestampQuery ? 'yes' : 'no'} ` +
        `subgroup-matrix=${f.subgroupMatrix ? 'yes' : 'no'}`,
      `limits      maxBufferSize ${formatBytes(adapter.limits.maxBufferSize)}, maxStorageBufferBindingSize ${formatBytes(adapter.limits.maxStorageBufferBindingSize)}, ` +
        `workgroup storage ${adapter.limits.maxComputeWorkgroupStorageSize} B, invocations ${adapter.limits.maxComputeInvocationsPerWorkgroup}`,
    );
  } else lines.push(`adapter     unavailable: ${adapterError}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
