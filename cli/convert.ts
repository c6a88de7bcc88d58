/**
 * The converter: a Hugging Face or Mistral-native Pixtral / mistral3 checkpoint folder ->
 * `manifest.json` + `shard-NNNNN.bin` + the tokenizer file (format: `src/weights/manifest.ts`,
 * `docs/format.md`). Everything is validated before the first byte is written; tensors are then
 * streamed in canonical order, chunk by chunk, into sequential shards hashed on the fly, inside a
 * temp folder that is renamed into place only when complete. Peak memory is a few chunks
 * (~64 MB each), whatever the model size.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { ModelConfig } from '../src/config.js';
import {
  MANIFEST_FORMAT, MANIFEST_VERSION, validateManifest, type Manifest, type StoredDType, type TensorEntry, type TokenizerEntry,
} from '../src/weights/manifest.js';
import { chooseDType, type VisionDType } from './dtype-policy.js';
import { detectLayout, findTokenizer, openLayoutCheckpoint, readModelConfig, type LayoutKind } from './layouts.js';
import { checkOutputAgainstInput, commitOutput, discardOutput, prepareOutput } from './output-dir.js';
import { planConversion } from './plan.js';
import { ShardWriter } from './shard-writer.js';
import { findTokenizerVersion } from './tokenizer-version.js';
import { Scratch, writeTensor } from './write-tensor.js';

/**
 * Default shard size, 64 MiB. Small enough that: one shard is one comfortable IndexedDB value
 * (Chromium/Firefox handle tens of MB per put without spikes; hundreds of MB risk OOM in the
 * structured clone) and one object well under common CDN/HTTP cache per-object limits (e.g.
 * Cloudflare caches objects up to 512 MB, browser HTTP caches evict large entries first); an
 * interrupted download resumes losing at most 64 MB; verifying a shard's SHA-256 in the browser
 * needs the whole shard in memory once (crypto.subtle.digest is not incremental). Large enough
 * that a 7 GB q4 model is ~110 files, not thousands of requests.
 */
export const DEFAULT_SHARD_MB = 64;
/**
 * f32 bytes of one row chunk: the largest transient buffer per tensor (the source bytes, their
 * f32 decoding and the encoded output of one chunk are alive at once, ~2.5x this).
 */
export const DEFAULT_CHUNK_BYTES = 32 << 20;

export const STORED_DTYPES: readonly StoredDType[] = ['q4', 'f16', 'f32'];

export interface ConvertProgress {
  tensor: string;
  /** 0-based index of the tensor being converted. */
  index: number;
  count: number;
  /** Source bytes read so far, over all tensors. */
  bytesRead: number;
  totalBytes: number;
}

export interface ConvertOptions {
  input: string;
  output: string;
  dtype?: StoredDType;
  /** Vision tower + projector dtype when --dtype is q4 or f16 (default f16). */
  visionDtype?: VisionDType;
  shardMb?: number;
  /** Replace the output folder when it holds a previous conversion (never any other folder). */
  force?: boolean;
  /** Force a layout when a folder holds both. */
  layout?: LayoutKind;
  chunkBytes?: number;
  onProgress?: (p: ConvertProgress) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface ConvertResult {
  output: string;
  layout: LayoutKind;
  manifest: Manifest;
  /** Source bytes read. */
  bytesRead: number;
  /** Shard bytes written (padding included). */
  bytesWritten: number;
  seconds: number;
  warnings: string[];
}

export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  const t0 = performance.now();
  const input = resolve(opts.input);
  const output = resolve(opts.output);
  const dtype = opts.dtype ?? 'q4';
  if (!STORED_DTYPES.includes(dtype)) throw new RangeError(`dtype "${String(dtype)}" is not one of ${STORED_DTYPES.join(', ')}`);
  const visionDtype = opts.visionDtype ?? (dtype === 'f32' ? 'f32' : 'f16');
  const shardMb = opts.shardMb ?? DEFAULT_SHARD_MB;
  const shardBytes = Math.floor((shardMb * 1024 * 1024) / 256) * 256;
  if (!(shardBytes >= 4096)) throw new RangeError(`shard size ${shardMb} MB is too small (minimum 4 KiB)`);
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.onWarning?.(m);
  };

  const layout = await detectLayout(input, opts.layout);
  await checkOutputAgainstInput(input, output);
  const config = await readModelConfig(layout);
  const ckpt = await openLayoutCheckpoint(layout);
  let tmp: string | undefined;
  let shards: ShardWriter | undefined;
  try {
    const plan = planConversion(config, layout.kind, ckpt);
    if (plan.unused.length) {
      const shown = plan.unused.slice(0, 5).join(', ');
      warn(`${plan.unused.length} source tensor(s) not used by the model, skipped: ${shown}${plan.unused.length > 5 ? ', ...' : ''}`);
    }
    const tokenizer = await findTokenizer(input);
    if (!tokenizer) warn(`no tekken.json or tokenizer.json in ${input}: manifest has no tokenizer`);

    const tokBytes = tokenizer ? await readFile(tokenizer.path) : null;
    const version = await findTokenizerVersion(input, tokenizer && tokBytes ? { kind: tokenizer.kind, bytes: tokBytes } : null, config);
    if (tokenizer && !version) warn(`no tokenizer version in ${tokenizer.file}, params.json or config.json: the manifest records none`);

    tmp = await prepareOutput(input, output, opts.force ?? false);
    shards = new ShardWriter(tmp, shardBytes);
    const entries: TensorEntry[] = [];
    let bytesRead = 0;
    const scratch = new Scratch();
    const count = plan.tensors.length;
    for (const [index, p] of plan.tensors.entries()) {
      const choice = chooseDType(p.expected, dtype, visionDtype);
      if (choice.warning) warn(choice.warning);
      const progress = () => opts.onProgress?.({ tensor: p.expected.name, index, count, bytesRead, totalBytes: plan.totalBytes });
      progress();
      entries.push(
        await writeTensor(p, shards, {
          dtype: choice.dtype,
          chunkBytes: opts.chunkBytes ?? DEFAULT_CHUNK_BYTES,
          spillPath: join(tmp, '.q4-scales.tmp'),
          signal: opts.signal,
          scratch,
          onChunk: (n) => {
            bytesRead += n;
            progress();
          },
        }),
      );
    }
    const shardList = await shards.finish();
    const tok = tokenizer && tokBytes ? await writeTokenizer(tokBytes, tmp, tokenizer.file, tokenizer.kind, version?.version) : null;
    const manifest = buildManifest(basename(input), dtype, config, tok, entries, shardList);
    await writeFile(join(tmp, 'manifest.json'), manifestJson(manifest));
    await commitOutput(tmp, output, opts.force ?? false);
    tmp = undefined;
    return {
      output,
      layout: layout.kind,
      manifest,
      bytesRead,
      bytesWritten: shards.bytesWritten,
      seconds: (performance.now() - t0) / 1000,
      warnings,
    };
  } finally {
    await ckpt.close();
    if (tmp) {
      await shards?.abort();
      await discardOutput(tmp);
    }
  }
}

function buildManifest(
  name: string, dtype: StoredDType, config: ModelConfig, tokenizer: TokenizerEntry | null, tensors: TensorEntry[],
  shards: Manifest['shards'],
): Manifest {
  const m: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    name,
    dtype,
    config,
    tokenizer,
    tensors,
    shards,
    totalBytes: shards.reduce((a, s) => a + s.byteLength, 0),
  };
  return validateManifest(m);
}

/** Readable and diff-friendly: pretty top level, one line per tensor and per shard. */
export function manifestJson(m: Manifest): string {
  const { tensors, shards, ...head } = m;
  const list = (xs: unknown[]) => `[\n${xs.map((x) => `  ${JSON.stringify(x)}`).join(',\n')}\n ]`;
  const top = JSON.stringify({ ...head, tensors: '@T', shards: '@S' }, null, 1);
  return `${top.replace('"@T"', list(tensors)).replace('"@S"', list(shards))}\n`;
}

async function writeTokenizer(
  bytes: Uint8Array, dir: string, file: TokenizerEntry['file'], kind: TokenizerEntry['kind'], version: string | undefined,
): Promise<TokenizerEntry> {
  // Tokenizer files are at most a few tens of MB: one read, hashed and written as is.
  await writeFile(join(dir, file), bytes);
  const entry: TokenizerEntry = { file, kind, byteLength: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  if (version) entry.version = version;
  return entry;
}
