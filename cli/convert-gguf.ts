/**
 * `pixtral-webgpu convert model.gguf --mmproj mmproj.gguf <out-dir>`: a llama.cpp GGUF pair into
 * the project's format (`docs/format.md`) without re-quantising: every tensor's bytes are copied
 * as GGUF stores them (quantised ones under their block dtype, `Q4_K`, `Q6_K`, ...; F16/F32 as
 * `f16`/`f32`), only the rows of q/k projections moved back to the engine's order (whole rows of
 * blocks, `engineRowOrder`), so the converted model computes exactly what the pair does. The
 * tokenizer file is the GGUF's Tekken vocabulary as a `tokenizer.json` (`ggufTokenizerJson`).
 * Inputs are paths (read in place) or http(s) URLs (Range requests); output as for `convert`:
 * a temp folder renamed into place when complete.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { throwIfAborted } from '../src/errors.js';
import { ggufModel } from '../src/gguf/mapping.js';
import { readGgufHeader } from '../src/gguf/reader.js';
import { fileSource } from '../src/gguf/source-node.js';
import { urlSource, type ByteSource } from '../src/gguf/source.js';
import { engineRowOrder, readTensorBytes } from '../src/gguf/tensor-data.js';
import { ggufChatLayout, ggufTokenizer, ggufTokenizerJson } from '../src/gguf/tokenizer.js';
import { checkSpecialIds } from '../src/text/tokenizer.js';
import { isLocalModel } from '../src/node/files.js';
import { GGUF_BLOCK_DTYPES, MANIFEST_FORMAT, MANIFEST_VERSION, validateManifest, type Manifest, type TensorEntry } from '../src/weights/manifest.js';
import type { ConvertProgress } from './convert.js';
import { manifestJson } from './convert.js';
import { commitOutput, discardOutput, prepareOutput } from './output-dir.js';
import { ShardWriter } from './shard-writer.js';

export interface ConvertGgufOptions {
  /** The text GGUF: a path or an http(s) URL. */
  input: string;
  /** The mmproj GGUF: a path or an http(s) URL. */
  mmproj: string;
  output: string;
  shardMb: number;
  force?: boolean;
  onProgress?: (p: ConvertProgress) => void;
  signal?: AbortSignal;
}

export interface ConvertGgufResult {
  output: string;
  manifest: Manifest;
  bytesRead: number;
  bytesWritten: number;
  seconds: number;
}

function open(where: string): ByteSource {
  if (!isLocalModel(where)) return urlSource(where);
  return fileSource(where.startsWith('file:') ? fileURLToPath(where) : where);
}

/** The manifest dtype of a GGUF tensor type: its own name for block types, f16/f32 for dense ones. */
function manifestDType(typeName: string): TensorEntry['dtype'] {
  if (typeName === 'F32') return 'f32';
  if (typeName === 'F16') return 'f16';
  return GGUF_BLOCK_DTYPES.find((d) => d === typeName) ?? ('' as never); // ggufModel refused other types
}

export async function convertGguf(opts: ConvertGgufOptions): Promise<ConvertGgufResult> {
  const t0 = performance.now();
  const output = resolve(opts.output);
  const shardBytes = Math.floor((opts.shardMb * 1024 * 1024) / 256) * 256;
  if (!(shardBytes >= 4096)) throw new RangeError(`shard size ${opts.shardMb} MB is too small (minimum 4 KiB)`);
  const sources = { text: open(opts.input), mmproj: open(opts.mmproj) };
  // Everything checked before a byte is written: headers, tensor set and shapes, tokenizer.
  const [text, mmproj] = await Promise.all([readGgufHeader(sources.text, { signal: opts.signal }), readGgufHeader(sources.mmproj, { signal: opts.signal })]);
  const gm = ggufModel(text, mmproj);
  const version = ggufChatLayout(text) ?? (gm.config.modelType === 'pixtral' ? 'v3' : 'v7');
  const tokenizer = ggufTokenizer(text, { version });
  checkSpecialIds(gm.config.tokens, tokenizer.specialIds, `${text.source} (tokenizer.ggml.*)`);
  for (const t of gm.tensors) if (!manifestDType(t.info.typeName)) throw new RangeError(`${t.name}: ggml type ${t.info.typeName} has no manifest dtype`);
  const tokBytes = new TextEncoder().encode(JSON.stringify(ggufTokenizerJson(text)));

  // The output may not be or hold a local input file; a URL input has no place on disk to clash
  // with, so a sibling path that cannot be the output stands in for it.
  const tmp = await prepareOutput(isLocalModel(opts.input) ? resolve(opts.input) : `${output}.input`, output, opts.force ?? false);
  const shards = new ShardWriter(tmp, shardBytes);
  let done = false;
  try {
    const entries: TensorEntry[] = [];
    const totalBytes = gm.tensors.reduce((a, t) => a + t.info.byteLength, 0);
    let bytesRead = 0;
    for (const [index, t] of gm.tensors.entries()) {
      throwIfAborted(opts.signal);
      opts.onProgress?.({ tensor: t.name, index, count: gm.tensors.length, bytesRead, totalBytes });
      const bytes = engineRowOrder(t, await readTensorBytes(sources[t.file], t.info, opts.signal));
      await shards.begin();
      await shards.write(bytes);
      entries.push({ name: t.name, dtype: manifestDType(t.info.typeName), shape: t.shape, data: shards.end() });
      bytesRead += bytes.byteLength;
    }
    opts.onProgress?.({ tensor: gm.tensors.at(-1)?.name ?? '', index: gm.tensors.length - 1, count: gm.tensors.length, bytesRead, totalBytes });
    const shardList = await shards.finish();
    await writeFile(join(tmp, 'tokenizer.json'), tokBytes);
    const name = text.metadata.get('general.name');
    const manifest = validateManifest({
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_VERSION,
      name: typeof name === 'string' ? name : opts.input,
      dtype: 'gguf',
      config: gm.config,
      tokenizer: { file: 'tokenizer.json', kind: 'hf', byteLength: tokBytes.byteLength, sha256: createHash('sha256').update(tokBytes).digest('hex'), version },
      tensors: entries,
      shards: shardList,
      totalBytes: shardList.reduce((a, s) => a + s.byteLength, 0),
    } satisfies Manifest);
    await writeFile(join(tmp, 'manifest.json'), manifestJson(manifest));
    await commitOutput(tmp, output, opts.force ?? false);
    done = true;
    return { output, manifest, bytesRead, bytesWritten: shards.bytesWritten, seconds: (performance.now() - t0) / 1000 };
  } finally {
    if (!done) {
      await shards.abort();
      await discardOutput(tmp);
    }
  }
}
