/**
 * A model converted from a GGUF pair (`manifest.dtype` `gguf`: `pixtral-webgpu convert
 * model.gguf --mmproj mmproj.gguf`) onto the GPU through the same `GgufWeights` as the pair
 * itself, so both compute the same thing: each manifest tensor becomes a GGUF tensor whose bytes
 * are read from the shards (block dtypes `Q4_K`, ... as stored, `f16`/`f32` dense), already in
 * the engine's row order (the converter moved the q/k rows).
 */
import { FormatError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import type { Manifest, TensorEntry } from '../weights/manifest.js';
import type { ModelSource } from '../weights/source.js';
import { GgufWeights } from './gpu-weights.js';
import type { GgufModel, GgufTensorSource } from './mapping.js';
import type { ByteSource } from './source.js';
import { GGML_TYPE } from './types.js';

/** Whether a manifest holds a model converted from a GGUF pair. */
export const isConvertedGguf = (m: Manifest): boolean => m.dtype === 'gguf';

/** Whether the converted model's text weights are block-quantised (the GGUF loader's KV-cache rule). */
export function convertedGgufQuantized(m: Manifest): boolean {
  return m.tensors.some((t) => t.name.startsWith('language_model.') && t.dtype !== 'f32' && t.dtype !== 'f16');
}

/**
 * The shards as one byte space (shard 0's bytes, then shard 1's, ...), read one shard at a time;
 * the last shard read is kept for the next read.
 */
function shardsSource(files: ModelSource): { source: ByteSource; start: number[] } {
  const start: number[] = [];
  let at = 0;
  for (const s of files.manifest.shards) {
    start.push(at);
    at += s.byteLength;
  }
  let held: { index: number; bytes: Uint8Array } | null = null;
  const shard = async (index: number) => {
    if (held?.index !== index) held = { index, bytes: await files.readShard(index) };
    return held.bytes;
  };
  const source: ByteSource = {
    name: files.url,
    size: async () => at,
    async read(offset, length) {
      const out = new Uint8Array(Math.max(0, Math.min(length, at - offset)));
      let done = 0;
      while (done < out.byteLength) {
        const pos = offset + done;
        let i = start.length - 1;
        while (start[i]! > pos) i--;
        const bytes = await shard(i);
        const from = pos - start[i]!;
        const n = Math.min(out.byteLength - done, bytes.byteLength - from);
        out.set(bytes.subarray(from, from + n), done);
        done += n;
      }
      return out;
    },
  };
  return { source, start };
}

/** The GGUF tensor a manifest entry describes, at its place in the shards' byte space. */
function tensorSource(t: TensorEntry, start: number[], m: Manifest): GgufTensorSource {
  const typeName = t.dtype === 'f32' ? 'F32' : t.dtype === 'f16' ? 'F16' : t.dtype;
  if (typeName === 'q4') throw new FormatError(`${t.name}: q4 tensor in a gguf manifest`);
  const first = t.data[0];
  if (!first) throw new FormatError(`${t.name}: no data`);
  let byteLength = 0;
  for (const [k, s] of t.data.entries()) {
    // ShardWriter's streams run on from a shard's end into the next shard's start.
    if (k > 0 && (s.offset !== 0 || s.shard !== t.data[k - 1]!.shard + 1 || t.data[k - 1]!.offset + t.data[k - 1]!.byteLength !== m.shards[s.shard - 1]!.byteLength)) {
      throw new FormatError(`${t.name}: data segments are not contiguous across shards`);
    }
    byteLength += s.byteLength;
  }
  return {
    name: t.name,
    shape: t.shape,
    file: 'text',
    info: { name: t.name, shape: [...t.shape].reverse(), type: GGML_TYPE[typeName], typeName, offset: start[first.shard]! + first.offset, byteLength },
  };
}

/** Uploads a `gguf` manifest's tensors as `GgufWeights`; `onBytes` reports bytes after each tensor. */
export async function uploadConvertedGguf(files: ModelSource, gpu: Gpu, opts: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {}): Promise<GgufWeights> {
  const m = files.manifest;
  const { source, start } = shardsSource(files);
  const model: GgufModel = { config: m.config, tensors: m.tensors.map((t) => tensorSource(t, start, m)) };
  return GgufWeights.upload(gpu, model, { text: source, mmproj: source }, { signal: opts.signal, onTensor: (_, n) => opts.onBytes?.(n) });
}
