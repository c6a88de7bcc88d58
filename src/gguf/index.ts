/**
 * GGUF files (llama.cpp's format) without a conversion step: what `inspectGguf` tells from the
 * header alone (architecture, quant mix, size, whether the weights fit this adapter's buffers),
 * and the reader, mapping, dequantisation and tokenizer the loader builds on.
 */
import { architecture } from './mapping.js';
import { readGgufHeader, type GgufHeader } from './reader.js';
import { blobSource, urlSource, type ByteSource } from './source.js';
import { isSupported } from './types.js';

export { readGgufHeader, type GgufHeader, type GgufTensorInfo, type GgufValue } from './reader.js';
export { blobSource, bytesSource, urlSource, type ByteSource } from './source.js';
export { ggufConfig, ggufModel, hfRow, type GgufModel, type GgufTensorSource } from './mapping.js';
export { dequantize, supportedType } from './dequant.js';
export { dequantizeTensor, engineRowOrder, readTensorBytes } from './tensor-data.js';
export { ggufChatLayout, ggufTokenizer, type ChatLayout } from './tokenizer.js';
export { SUPPORTED_TYPES, typeName, type SupportedType } from './types.js';

export interface GgufSummary {
  source: string;
  /** `general.architecture`: `llama` for a text model, `clip` for an mmproj. */
  architecture: string;
  name?: string;
  /** Bytes of the whole file as the header declares it (header + aligned tensor data). */
  bytes: number;
  tensors: number;
  parameters: number;
  /** Per ggml type: tensor count and bytes. */
  quantMix: Record<string, { tensors: number; bytes: number }>;
  /** Tensors in a type this library cannot read (the file cannot be loaded if any). */
  unsupported: string[];
  /** The largest tensor's bytes (must fit the device's buffers, row-split where needed). */
  largestTensor: { name: string; bytes: number };
}

/** Facts from a header (no tensor byte read). */
export function summarizeGguf(h: GgufHeader): GgufSummary {
  const quantMix: GgufSummary['quantMix'] = {};
  let parameters = 0;
  let largest = { name: '', bytes: 0 };
  const unsupported: string[] = [];
  for (const t of h.tensors) {
    const m = (quantMix[t.typeName] ??= { tensors: 0, bytes: 0 });
    m.tensors++;
    m.bytes += t.byteLength;
    parameters += t.shape.reduce((a, b) => a * b, 1);
    if (t.byteLength > largest.bytes) largest = { name: t.name, bytes: t.byteLength };
    if (!isSupported(t.typeName)) unsupported.push(`${t.name} (${t.typeName})`);
  }
  const name = h.metadata.get('general.name');
  return {
    source: h.source, architecture: architecture(h), ...(typeof name === 'string' ? { name } : {}), bytes: h.declaredSize,
    tensors: h.tensors.length, parameters, quantMix, unsupported, largestTensor: largest,
  };
}

/** "Q4_K 62%, Q6_K 10%, F32 <1%": a file's ggml types by share of its tensor bytes, largest first. */
export function formatQuantMix(quantMix: GgufSummary['quantMix']): string {
  const total = Object.values(quantMix).reduce((a, m) => a + m.bytes, 0) || 1;
  return Object.entries(quantMix)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([type, m]) => {
      const pct = (100 * m.bytes) / total;
      return `${type} ${pct < 1 ? '<1' : Math.round(pct)}%`;
    })
    .join(', ');
}

/**
 * Reads a GGUF's header from a URL (Range requests), a File/Blob (in place) or any ByteSource
 * and summarises it, before any weight byte is fetched.
 */
export async function inspectGguf(file: string | Blob | ByteSource, opts: { signal?: AbortSignal; fetch?: typeof fetch } = {}): Promise<{ header: GgufHeader; summary: GgufSummary }> {
  const src = typeof file === 'string' ? urlSource(file, { fetch: opts.fetch }) : file instanceof Blob ? blobSource(file) : file;
  const header = await readGgufHeader(src, { signal: opts.signal });
  return { header, summary: summarizeGguf(header) };
}
