/**
 * A small synthetic converted model for the loader tests, built identically in Node (to write
 * it under `.scratch/store-fixture/`, served at `/scratch/store-fixture/`) and in the test page
 * (to know the expected bytes). Deterministic; awkward on purpose: an f16 tensor whose byte
 * length is not a multiple of 4, a q4 tensor with scales, and a tensor split across two shards
 * at an odd byte, so the GPU upload has to handle unaligned segment boundaries.
 */
import { PIXTRAL_12B_2409 } from '../../src/config.js';
import { validateManifest, type Manifest, type Segment, type StoredDType, type TensorEntry } from '../../src/weights/manifest.js';
import { sha256Hex } from '../../src/weights/hash.js';

export const STORE_FIXTURE_DIR = 'store-fixture';
/** Where the page fetches it (see test/fixture-server.ts). */
export const STORE_FIXTURE_URL = `/scratch/${STORE_FIXTURE_DIR}/`;

/** Shard capacity: odd, so the tensor that spills over is cut at an odd byte. */
const SHARD_CAPACITY = 150_003;

interface Spec {
  name: string;
  dtype: StoredDType;
  shape: number[];
}

const SPECS: Spec[] = [
  { name: 'vision_tower.patch_conv.weight', dtype: 'f32', shape: [300, 70] }, // 84000 B
  { name: 'vision_tower.ln_pre.weight', dtype: 'f16', shape: [33, 45] }, // 2970 B: not a multiple of 4
  { name: 'multi_modal_projector.linear_1.weight', dtype: 'q4', shape: [96, 64] }, // 3072 B + 384 B scales
  { name: 'language_model.model.embed_tokens.weight', dtype: 'f32', shape: [1000, 96] }, // 384000 B: spans shards
  { name: 'language_model.model.norm.weight', dtype: 'f16', shape: [17] }, // 34 B
  { name: 'language_model.lm_head.weight', dtype: 'f32', shape: [128, 128] }, // 65536 B
];

export interface StoreFixture {
  manifest: Manifest;
  /** File name -> bytes (manifest.json, shards, tekken.json). */
  files: Map<string, Uint8Array>;
  /** Tensor name -> its data bytes and, for q4, its scales bytes. */
  tensors: Map<string, { data: Uint8Array; scales?: Uint8Array }>;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s & 0xff;
  };
}

function bytesOf(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r();
  return b;
}

export async function buildStoreFixture(): Promise<StoreFixture> {
  const shards: Uint8Array[][] = [[]];
  const shardLen = [0];
  const tensors = new Map<string, { data: Uint8Array; scales?: Uint8Array }>();
  const entries: TensorEntry[] = [];

  // Appends `bytes` at the next 256-aligned offset, spilling into new shards when full.
  const place = (bytes: Uint8Array): Segment[] => {
    const segs: Segment[] = [];
    let rest = bytes;
    while (rest.byteLength) {
      let s = shards.length - 1;
      let off = Math.ceil(shardLen[s]! / 256) * 256;
      if (off >= SHARD_CAPACITY) {
        shards.push([]);
        shardLen.push(0);
        s++;
        off = 0;
      }
      const n = Math.min(rest.byteLength, SHARD_CAPACITY - off);
      if (off > shardLen[s]!) shards[s]!.push(new Uint8Array(off - shardLen[s]!));
      shards[s]!.push(rest.subarray(0, n));
      shardLen[s] = off + n;
      segs.push({ shard: s, offset: off, byteLength: n });
      rest = rest.subarray(n);
    }
    return segs;
  };

  SPECS.forEach((spec, i) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'q4') {
      const data = bytesOf(n / 2, 100 + i);
      const scales = bytesOf((n / 32) * 2, 200 + i);
      tensors.set(spec.name, { data, scales });
      entries.push({ ...spec, data: place(data), quant: { format: 'q4g32', groupSize: 32, scales: place(scales) } });
    } else {
      const data = bytesOf(n * (spec.dtype === 'f32' ? 4 : 2), 100 + i);
      tensors.set(spec.name, { data });
      entries.push({ ...spec, data: place(data) });
    }
  });

  const files = new Map<string, Uint8Array>();
  const shardEntries = [];
  for (let s = 0; s < shards.length; s++) {
    const buf = new Uint8Array(shardLen[s]!);
    let at = 0;
    for (const part of shards[s]!) {
      buf.set(part, at);
      at += part.byteLength;
    }
    const name = `shard-${String(s).padStart(5, '0')}.bin`;
    files.set(name, buf);
    shardEntries.push({ name, byteLength: buf.byteLength, sha256: await sha256Hex(buf) });
  }
  const tok = new TextEncoder().encode(JSON.stringify({ config: { pattern: 'synthetic', num_vocab_tokens: 3 }, vocab: [] }));
  files.set('tekken.json', tok);
  const manifest: Manifest = {
    format: 'pixtral-webgpu',
    formatVersion: 1,
    name: 'store-fixture',
    dtype: 'f32',
    // Only the loader reads this model; the config just has to pass validation (real dimensions).
    config: PIXTRAL_12B_2409,
    tokenizer: { file: 'tekken.json', kind: 'tekken', byteLength: tok.byteLength, sha256: await sha256Hex(tok) },
    tensors: entries,
    shards: shardEntries,
    totalBytes: shardEntries.reduce((a, s) => a + s.byteLength, 0),
  };
  validateManifest(manifest);
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
  return { manifest, files, tensors };
}
