/**
 * `pixtral-webgpu info model.gguf [--mmproj mmproj.gguf]`: a llama.cpp GGUF's header facts, read
 * without any tensor byte (a path is read in place, an http(s) URL by Range requests): name,
 * architecture, size, tensors, parameters, quant mix, types this library cannot read; with the
 * mmproj, the pair's dimensions as the loader maps them (`ggufConfig`) and the KV bytes per token.
 */
import { fileURLToPath } from 'node:url';
import { formatQuantMix, ggufConfig, inspectGguf, type GgufSummary } from '../src/gguf/index.js';
import { fileSource } from '../src/gguf/source-node.js';
import { urlSource, type ByteSource } from '../src/gguf/source.js';
import { isLocalModel } from '../src/node/files.js';
import { modelDimensions } from './model-dimensions.js';
import { formatBytes } from '../src/errors.js';

function open(where: string): ByteSource {
  if (!isLocalModel(where)) return urlSource(where);
  return fileSource(where.startsWith('file:') ? fileURLToPath(where) : where);
}

function fileReport(s: GgufSummary) {
  return {
    source: s.source, architecture: s.architecture, name: s.name ?? null, bytes: s.bytes, tensors: s.tensors, parameters: s.parameters,
    quantMix: s.quantMix, unsupported: s.unsupported,
  };
}

export type GgufReport = Awaited<ReturnType<typeof ggufReport>>;

/** The header facts of `model` (and of its `mmproj`, with the pair's dimensions). */
export async function ggufReport(model: string, mmproj?: string) {
  const text = await inspectGguf(open(model));
  const mm = mmproj === undefined ? null : await inspectGguf(open(mmproj));
  const c = mm ? ggufConfig(text.header, mm.header) : null;
  return {
    format: 'gguf' as const,
    text: fileReport(text.summary),
    mmproj: mm ? fileReport(mm.summary) : null,
    totalBytes: text.summary.bytes + (mm?.summary.bytes ?? 0),
    config: c
      ? {
          modelType: c.modelType,
          ...modelDimensions(c),
        }
      : null,
  };
}

/** `info`'s text lines for a GGUF report. */
export function ggufLines(r: GgufReport): string[] {
  const file = (label: string, f: NonNullable<GgufReport['mmproj']>) =>
    `${label.padEnd(12)}${f.name ?? '(unnamed)'} (${f.architecture}) from ${f.source}: ${formatBytes(f.bytes)}, ${f.tensors} tensors, ` +
    `${(f.parameters / 1e6).toFixed(2)} M parameters; ${formatQuantMix(f.quantMix)}`;
  const lines = [file('gguf text', r.text)];
  if (r.mmproj) lines.push(file('gguf mmproj', r.mmproj));
  else lines.push(`${'gguf mmproj'.padEnd(12)}not given (--mmproj mmproj.gguf adds the vision tower and the pair's dimensions)`);
  const unsupported = [...r.text.unsupported, ...(r.mmproj?.unsupported ?? [])];
  lines.push(`${'readable'.padEnd(12)}${unsupported.length ? `no: ${unsupported.join(', ')}` : 'yes: every tensor type is supported'}`);
  const c = r.config;
  if (c) {
    const t = c.text;
    lines.push(
      `vision      hidden ${c.vision.hidden}, ${c.vision.layers} layers, ${c.vision.heads} heads, patch ${c.vision.patch}, image size ${c.vision.imageSize}, merge ${c.spatialMerge}`,
      `text        hidden ${t.hidden}, ${t.layers} layers, ${t.heads} heads / ${t.kvHeads} kv, head dim ${t.headDim}, vocab ${t.vocab}, max positions ${t.maxPositions}`,
      `kv cache    ${formatBytes(c.kvBytesPerToken.f16)} per token (f16), ${formatBytes(c.kvBytesPerToken.f32)} (f32)`,
    );
  }
  return lines;
}
