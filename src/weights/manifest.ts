/**
 * The converted-model format (`manifest.json` + shard files), shared by the Node converter and
 * the browser loader. A tensor's bytes are the concatenation of its `data` segments (a tensor
 * larger than a shard spans several); a q4 tensor also has `scales` segments (see
 * `src/quant/q4.ts` for the bit layout). Tensor names are the canonical Hugging Face Llava names
 * (`vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
 * `language_model.lm_head.weight`): the converter renames once, the runtime never does.
 */
import type { ModelConfig } from '../config.js';
import { FormatError } from '../errors.js';
import { checkConfig } from './manifest-config.js';
import { VERSION_NAME } from '../text/tokenizer-files.js';

export const MANIFEST_FORMAT = 'pixtral-webgpu' as const;
export const MANIFEST_VERSION = 1 as const;

export type StoredDType = 'f32' | 'f16' | 'q4';

/**
 * A tensor kept in a ggml block format, named as GGUF names the type: what `convert model.gguf
 * --mmproj mmproj.gguf` writes for a quantised GGUF tensor (the blocks copied as stored, rows in
 * the engine's order). A manifest holding any has `dtype` `gguf`.
 */
export const GGUF_BLOCK_DTYPES = ['Q4_0', 'Q4_1', 'Q5_0', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
export type GgufBlockDType = (typeof GGUF_BLOCK_DTYPES)[number];

export interface Segment {
  /** Index into `Manifest.shards`. */
  shard: number;
  /** Byte offset inside the shard (a multiple of 256). */
  offset: number;
  byteLength: number;
}

export interface QuantInfo {
  format: 'q4g32';
  groupSize: 32;
  /** f16 scales [rows, cols / groupSize]. */
  scales: Segment[];
}

export interface TensorEntry {
  name: string;
  dtype: StoredDType | GgufBlockDType;
  /** Logical shape, PyTorch order (a linear weight is [out, in]). */
  shape: number[];
  /**
   * f32/f16: raw little-endian values; q4: the packed u32 nibbles [rows, cols / 8]; a GGUF block
   * dtype: ggml's blocks as stored, each row `cols / block elements` blocks.
   */
  data: Segment[];
  quant?: QuantInfo;
}

export interface ShardEntry {
  /** File name relative to the manifest, e.g. `shard-00003.bin`. */
  name: string;
  byteLength: number;
  /** Lowercase hex SHA-256 of the file. */
  sha256: string;
}

export interface TokenizerEntry {
  /** Plain file name inside the model folder: 'tekken.json' or 'tokenizer.json'. */
  file: string;
  kind: 'tekken' | 'hf';
  byteLength: number;
  /** Lowercase hex SHA-256 of the file; it is verified like a shard's. */
  sha256: string;
  /**
   * Mistral tokenizer version ('v3', 'v7', ...), which picks the chat layout: tekken.json's
   * `config.version`, else the checkpoint's `tokenizer_version`, else 'v3' for Pixtral-12B.
   * Absent when the checkpoint says nothing and the model is not Pixtral.
   */
  version?: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  /** Human-readable source description, e.g. the input folder's name. */
  name: string;
  /** The dtype asked of the converter (`--dtype`); `gguf` when converted from a GGUF pair. */
  dtype: StoredDType | 'gguf';
  config: ModelConfig;
  tokenizer: TokenizerEntry | null;
  tensors: TensorEntry[];
  shards: ShardEntry[];
  /** Sum of shard byte lengths. */
  totalBytes: number;
}

function fail(msg: string): never {
  throw new FormatError(`manifest.json: ${msg}`);
}

/** Segments that each lie inside an existing shard. */
function isSegments(v: unknown, shards: readonly ShardEntry[]): v is Segment[] {
  return (
    Array.isArray(v) &&
    v.every(
      (s) =>
        s && Number.isInteger(s.shard) && s.shard >= 0 && s.shard < shards.length && Number.isSafeInteger(s.offset) && s.offset >= 0 &&
        Number.isSafeInteger(s.byteLength) && s.byteLength >= 0 && s.offset + s.byteLength <= shards[s.shard]!.byteLength,
    )
  );
}

/**
 * A plain file name inside the model folder: letters, digits, `_`, `-` and `.`, not starting
 * with a dot (so never `.` or `..`), no path separator, no scheme (`https:`), no `%` escapes.
 * Shard and tokenizer names are resolved against the model's URL; anything else could fetch from
 * outside the folder or another host.
 */
export function isPlainFileName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= 255 && /^[A-Za-z0-9_][\w.-]*$/.test(name);
}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Structural validation of a parsed manifest, config included (`manifest-config.ts`); throws
 * FormatError naming the first problem. Runs before anything is downloaded or allocated.
 */
export function validateManifest(m: unknown): Manifest {
  if (!m || typeof m !== 'object') fail('not an object');
  const o = m as Manifest;
  if (o.format !== MANIFEST_FORMAT) fail(`format is ${JSON.stringify(o.format)}, expected "${MANIFEST_FORMAT}"`);
  if (o.formatVersion !== MANIFEST_VERSION) fail(`formatVersion ${o.formatVersion} is not supported (expected ${MANIFEST_VERSION})`);
  try {
    checkConfig(o.config);
  } catch (e) {
    fail((e as Error).message);
  }
  if (!Array.isArray(o.shards) || !o.shards.length) fail('missing shards');
  const names = new Set<string>();
  for (const s of o.shards) {
    if (!s || !isPlainFileName(s.name)) fail(`shard name ${JSON.stringify(s?.name)} is not a plain file name inside the model folder`);
    if (names.has(s.name)) fail(`shard ${s.name} is listed twice`);
    names.add(s.name);
    if (!Number.isSafeInteger(s.byteLength) || s.byteLength < 0) fail(`shard ${s.name}: bad byteLength`);
    if (typeof s.sha256 !== 'string' || !SHA256.test(s.sha256)) fail(`shard ${s.name}: bad sha256`);
  }
  const total = o.shards.reduce((a, s) => a + s.byteLength, 0);
  if (o.totalBytes !== total) fail(`totalBytes ${o.totalBytes} is not the sum of the shard sizes, ${total}`);
  validateTokenizer(o.tokenizer, names);
  if (!Array.isArray(o.tensors)) fail('missing tensors');
  for (const t of o.tensors) {
    if (!t || typeof t.name !== 'string') fail('tensor without name');
    const block = (GGUF_BLOCK_DTYPES as readonly string[]).includes(t.dtype);
    if (!['f32', 'f16', 'q4'].includes(t.dtype) && !block) fail(`${t.name}: unknown dtype ${t.dtype}`);
    if (block && o.dtype !== 'gguf') fail(`${t.name}: GGUF block dtype ${t.dtype} in a "${o.dtype}" manifest (only in "gguf" ones)`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) fail(`${t.name}: bad shape`);
    if (!isSegments(t.data, o.shards)) fail(`${t.name}: bad data segments`);
    if (t.dtype === 'q4' && (!t.quant || !isSegments(t.quant.scales, o.shards))) fail(`${t.name}: q4 without scales`);
  }
  return o;
}

function validateTokenizer(t: TokenizerEntry | null | undefined, shardNames: Set<string>): void {
  if (t === null) return;
  if (!t || typeof t !== 'object') fail('missing tokenizer (null when the model has none)');
  if (!isPlainFileName(t.file)) fail(`tokenizer file ${JSON.stringify(t.file)} is not a plain file name inside the model folder`);
  if (shardNames.has(t.file) || t.file === 'manifest.json') fail(`tokenizer file ${t.file} has the name of another file of the model`);
  if (t.kind !== 'tekken' && t.kind !== 'hf') fail(`tokenizer kind ${JSON.stringify(t.kind)} is not "tekken" or "hf"`);
  if (!Number.isSafeInteger(t.byteLength) || t.byteLength <= 0) fail(`tokenizer ${t.file}: bad byteLength`);
  if (typeof t.sha256 !== 'string' || !SHA256.test(t.sha256)) fail(`tokenizer ${t.file}: bad sha256`);
  if (t.version !== undefined && (typeof t.version !== 'string' || !VERSION_NAME.test(t.version))) {
    fail(`tokenizer version ${JSON.stringify(t.version)} is not like "v3" or "v7"`);
  }
}

export function segmentBytes(segs: Segment[]): number {
  return segs.reduce((a, s) => a + s.byteLength, 0);
}
