/**
 * The converter's building blocks: the streaming safetensors reader (header validation,
 * truncation, ranged reads, multi-file index), the writer used by tests and the bench, value
 * decoding, the RoPE row reorder, name mapping, chunking and the shard writer.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, IntegrityError } from '../../src/errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../../src/util/f16.js';
import { decodeToF32, encodeF16, permuteForRope } from '../../cli/encode.js';
import { hfToCanonical, nativeToCanonical } from '../../cli/layouts.js';
import { Checkpoint, SafetensorsFile } from '../../cli/safetensors.js';
import { safetensorsHeader, writeSafetensors } from '../../cli/safetensors-writer.js';
import { SEGMENT_ALIGN, ShardWriter } from '../../cli/shard-writer.js';
import { chunkRows } from '../../cli/write-tensor.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pixtral-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytesOf = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

describe('safetensors reader', () => {
  const f32 = new Float32Array([1, -2, 3.5, 4, 5, 6]);
  const bf16 = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001]);
  const f16 = new Uint16Array([0x3c00, 0xbc00, 0x7bff]);
  const i64 = new BigInt64Array([1n, 2n]);
  let path: string;
  beforeAll(async () => {
    path = join(dir, 'a.safetensors');
    await writeSafetensors(path, [
      { name: 'w', dtype: 'F32', shape: [2, 3], data: f32 },
      { name: 'b', dtype: 'BF16', shape: [4], data: bf16 },
      { name: 'h', dtype: 'F16', shape: [3], data: f16 },
      { name: 'ids', dtype: 'I64', shape: [2], data: i64 },
    ]);
  });

  it('reads names, dtypes, shapes and byte ranges', async () => {
    const f = await SafetensorsFile.open(path);
    try {
      expect([...f.tensors.keys()]).toEqual(['w', 'b', 'h', 'ids']);
      const w = f.tensors.get('w')!;
      expect(w).toMatchObject({ dtype: 'F32', shape: [2, 3], byteLength: 24 });
      expect(await f.read(w, 0, 24)).toEqual(bytesOf(f32));
      // Second row only: a ranged read, not the whole tensor.
      expect(new Float32Array((await f.read(w, 12, 12)).buffer)).toEqual(new Float32Array([4, 5, 6]));
      expect(await f.read(f.tensors.get('b')!, 0, 8)).toEqual(bytesOf(bf16));
      expect(await f.read(f.tensors.get('ids')!, 0, 16)).toEqual(bytesOf(i64));
      await expect(f.read(w, 20, 8)).rejects.toThrow(RangeError);
    } finally {
      await f.close();
    }
  });

  it('refuses a truncated file, naming the tensor that runs past the end', async () => {
    const p = join(dir, 'trunc.safetensors');
    await writeFile(p, await readFile(path));
    await truncate(p, (await readFile(path)).length - 4);
    const err = await SafetensorsFile.open(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/truncated: tensor "ids" ends at byte \d+ but the file has only \d+ bytes/);
  });

  it('refuses a file cut inside its header, and one shorter than 8 bytes', async () => {
    const p = join(dir, 'hdr.safetensors');
    await writeFile(p, (await readFile(path)).subarray(0, 20));
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/truncated: header needs/);
    await writeFile(p, Buffer.from([1, 2, 3]));
    await expect(SafetensorsFile.open(p)).rejects.toThrow(IntegrityError);
  });

  it('refuses malformed headers with FormatError', async () => {
    const p = join(dir, 'bad.safetensors');
    const write = async (json: string) => {
      const body = Buffer.from(json);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(body.length));
      await writeFile(p, Buffer.concat([len, body, Buffer.alloc(64)]));
    };
    await write('{not json');
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/not valid JSON/);
    await write('{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}');
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/"x" F32\[4\] needs 16 bytes but data_offsets span 8/);
    await write('{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}');
    await expect(SafetensorsFile.open(p)).rejects.toThrow(FormatError);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(1n << 40n);
    await writeFile(p, len);
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/implausible/);
  });

  it('refuses tensors that overlap or leave gaps in the data section', async () => {
    const p = join(dir, 'tiling.safetensors');
    const write = async (header: Record<string, unknown>, dataBytes: number) => {
      const body = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(body.length));
      await writeFile(p, Buffer.concat([len, body, Buffer.alloc(dataBytes)]));
    };
    const t = (a: number, b: number) => ({ dtype: 'F32', shape: [(b - a) / 4], data_offsets: [a, b] });
    // b aliases the second half of a.
    await write({ a: t(0, 16), b: t(8, 24) }, 24);
    let err = await SafetensorsFile.open(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/tensors "a" \(bytes 0\.\.16\) and "b" \(bytes 8\.\.24\) overlap/);
    // Same range twice.
    await write({ a: t(0, 16), b: t(0, 16) }, 16);
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/overlap/);
    // 8 bytes between a and b.
    await write({ a: t(0, 16), b: t(24, 32) }, 32);
    err = await SafetensorsFile.open(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/8 byte gap before tensor "b" \(data bytes 16\.\.24 belong to no tensor\)/);
    // A first tensor that does not start at 0, and bytes after the last one.
    await write({ b: t(4, 20) }, 20);
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/4 byte gap before tensor "b"/);
    await write({ a: t(0, 16) }, 20);
    await expect(SafetensorsFile.open(p)).rejects.toThrow(/4 bytes after the last tensor belong to no tensor/);
    // Exact tiling, a zero-size tensor included, in any header order: accepted.
    await write({ b: t(16, 24), e: t(16, 16), a: t(0, 16) }, 24);
    const f = await SafetensorsFile.open(p);
    expect([...f.tensors.keys()]).toEqual(['b', 'e', 'a']);
    await f.close();
  });

  it('writes a header padded to 8 bytes whose offsets follow the shapes', () => {
    const h = safetensorsHeader([
      { name: 'a', dtype: 'BF16', shape: [3] },
      { name: 'b', dtype: 'F32', shape: [2, 2] },
    ]);
    expect(h.length % 8).toBe(0);
    const json = JSON.parse(h.subarray(8).toString()) as Record<string, { data_offsets: number[] }>;
    expect(json.a!.data_offsets).toEqual([0, 6]);
    expect(json.b!.data_offsets).toEqual([6, 22]);
  });
});

describe('multi-file checkpoints', () => {
  it('opens files through model.safetensors.index.json and checks the weight_map', async () => {
    const d = await mkdtemp(join(dir, 'idx-'));
    await writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    await writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), [{ name: 'b', dtype: 'F32', shape: [1], data: new Float32Array([3]) }]);
    const index = join(d, 'model.safetensors.index.json');
    await writeFile(index, JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    const ck = await Checkpoint.openIndex(index);
    expect([...ck.tensors.keys()].sort()).toEqual(['a', 'b']);
    const b = ck.tensors.get('b')!;
    expect(new Float32Array((await b.file.read(b, 0, 4)).buffer)).toEqual(new Float32Array([3]));
    await ck.close();

    await writeFile(index, JSON.stringify({ weight_map: { a: 'model-00002-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    await expect(Checkpoint.openIndex(index)).rejects.toThrow(/tensor "a" is not in model-00002-of-00002.safetensors/);
  });

  it('refuses a tensor present in two files', async () => {
    const d = await mkdtemp(join(dir, 'dup-'));
    const t = [{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array([1]) }];
    await writeSafetensors(join(d, 'x.safetensors'), t);
    await writeSafetensors(join(d, 'y.safetensors'), t);
    await expect(Checkpoint.open([join(d, 'x.safetensors'), join(d, 'y.safetensors')])).rejects.toThrow(/"a" appears in both/);
  });
});

describe('value transforms', () => {
  it('decodes BF16 and F16 exactly', () => {
    const bf = new Uint16Array([0x3f80, 0xc049, 0x0001, 0x8000, 0x7f80, 0xff80, 0x4f00]);
    expect(Array.from(decodeToF32(bytesOf(bf.slice()), 'BF16'))).toEqual(Array.from(bf, bf16BitsToF32));
    const h = new Uint16Array([0x3c00, 0xc248, 0x0001, 0x03ff, 0x7bff, 0xfc00, 0x8000]);
    expect(Array.from(decodeToF32(bytesOf(h.slice()), 'F16'))).toEqual(Array.from(h, f16BitsToF32));
  });

  it('encodeF16 is bit-identical to f32ToF16Bits (edges and 2^20 random bit patterns)', () => {
    const edges = [0, -0, 1, -1, 65504, 65519.99, 65520, 65536, 1e9, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -15, 2 ** -24, 2 ** -25,
      2 ** -25 * 1.0001, 5.96e-8, 6.1e-5, 6.09e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-40, -3.4e38, 0.1, -2.5e-6];
    const rnd = new Uint32Array(1 << 20);
    let s = 7;
    for (let i = 0; i < rnd.length; i++) rnd[i] = s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // Also every exponent near the f16 range with random mantissas (where rounding matters most).
    for (let i = 0; i < 1 << 16; i++) rnd[i] = ((rnd[i]! & 0x807fffff) | ((100 + (i % 45)) << 23)) >>> 0;
    const all = new Float32Array([...edges, ...new Float32Array(rnd.buffer)]);
    const got = new Uint16Array(encodeF16(all).buffer);
    let bad = -1;
    for (let i = 0; i < all.length && bad < 0; i++) if (got[i] !== f32ToF16Bits(all[i]!)) bad = i;
    expect(bad < 0 ? 'all equal' : `value ${all[bad]} -> ${got[bad]} vs ${f32ToF16Bits(all[bad]!)}`).toBe('all equal');
  });

  it("permuteForRope matches HF's view(h, d/2, 2, K).transpose(1, 2) on two heads", () => {
    // 2 heads of d=4, K=1: native rows per head are (x0, y0, x1, y1), HF wants (x0, x1, y0, y1).
    const w = new Float32Array([0, 1, 2, 3, 10, 11, 12, 13]);
    expect(Array.from(permuteForRope(w, 8, 1, 4))).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
    const k2 = new Float32Array([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]); // 4 rows of K=2, one head d=4
    expect(Array.from(permuteForRope(k2, 4, 2, 4))).toEqual([0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5]);
    expect(() => permuteForRope(w, 6, 1, 4)).toThrow(/whole heads/);
  });

  it('chunks rows within the budget, in whole heads when asked', () => {
    expect(chunkRows(1000, 256, 64 * 1024, 1)).toBe(64);
    expect(chunkRows(1000, 256, 64 * 1024, 48)).toBe(48);
    expect(chunkRows(1000, 256, 16, 32)).toBe(32); // never below one head
    expect(chunkRows(10, 256, 1 << 30, 1)).toBe(10);
  });
});

describe('name mapping', () => {
  it.each([
    ['tok_embeddings.weight', 'language_model.model.embed_tokens.weight'],
    ['layers.7.attention.wk.weight', 'language_model.model.layers.7.self_attn.k_proj.weight'],
    ['layers.0.feed_forward.w2.weight', 'language_model.model.layers.0.mlp.down_proj.weight'],
    ['layers.3.ffn_norm.weight', 'language_model.model.layers.3.post_attention_layernorm.weight'],
    ['output.weight', 'language_model.lm_head.weight'],
    ['vision_encoder.transformer.layers.1.attention.wo.weight', 'vision_tower.transformer.layers.1.attention.o_proj.weight'],
    ['vision_encoder.transformer.layers.1.feed_forward.w3.weight', 'vision_tower.transformer.layers.1.feed_forward.up_proj.weight'],
    ['vision_encoder.transformer.layers.1.attention_norm.weight', 'vision_tower.transformer.layers.1.attention_norm.weight'],
    ['vision_encoder.patch_conv.weight', 'vision_tower.patch_conv.weight'],
    ['vision_language_adapter.w_out.bias', 'multi_modal_projector.linear_2.bias'],
  ])('native %s -> %s', (from, to) => {
    expect(nativeToCanonical(from)).toBe(to);
  });

  it('leaves unknown native names unmapped and maps mistral3 HF prefixes', () => {
    expect(nativeToCanonical('rope.freqs')).toBeUndefined();
    expect(hfToCanonical('model.language_model.layers.0.self_attn.q_proj.weight')).toBe('language_model.model.layers.0.self_attn.q_proj.weight');
    expect(hfToCanonical('model.multi_modal_projector.patch_merger.merging_layer.weight')).toBe('multi_modal_projector.patch_merger.merging_layer.weight');
    expect(hfToCanonical('model.vision_tower.ln_pre.weight')).toBe('vision_tower.ln_pre.weight');
    expect(hfToCanonical('lm_head.weight')).toBe('language_model.lm_head.weight');
    expect(hfToCanonical('language_model.lm_head.weight')).toBe('language_model.lm_head.weight');
  });
});

describe('ShardWriter', () => {
  it('aligns streams to 256 bytes, spans shards, and hashes what it wrote', async () => {
    const d = await mkdtemp(join(dir, 'shards-'));
    const w = new ShardWriter(d, 1024);
    const a = new Uint8Array(100).fill(1);
    const b = new Uint8Array(2000).map((_, i) => i & 0xff);
    await w.begin();
    await w.write(a);
    const segA = w.end();
    await w.begin();
    await w.write(b.subarray(0, 700));
    await w.write(b.subarray(700));
    const segB = w.end();
    const shards = await w.finish();
    expect(segA).toEqual([{ shard: 0, offset: 0, byteLength: 100 }]);
    expect(segB).toEqual([
      { shard: 0, offset: 256, byteLength: 768 },
      { shard: 1, offset: 0, byteLength: 1024 },
      { shard: 2, offset: 0, byteLength: 208 },
    ]);
    for (const s of [...segA, ...segB]) expect(s.offset % SEGMENT_ALIGN).toBe(0);
    expect(shards.map((s) => s.byteLength)).toEqual([1024, 1024, 208]);
    const files = await Promise.all(shards.map((s) => readFile(join(d, s.name))));
    files.forEach((f, i) => expect(createHash('sha256').update(f).digest('hex')).toBe(shards[i]!.sha256));
    const joined = Buffer.concat(segB.map((s) => files[s.shard]!.subarray(s.offset, s.offset + s.byteLength)));
    expect(new Uint8Array(joined)).toEqual(b);
    expect(files[0]!.subarray(100, 256).every((x) => x === 0)).toBe(true);
  });

  it('starts the next stream in a new shard when the padding would fill the current one', async () => {
    const d = await mkdtemp(join(dir, 'shards2-'));
    const w = new ShardWriter(d, 512);
    await w.begin();
    await w.write(new Uint8Array(300));
    w.end();
    await w.begin();
    await w.write(new Uint8Array(10));
    expect(w.end()).toEqual([{ shard: 1, offset: 0, byteLength: 10 }]);
    expect((await w.finish()).map((s) => s.byteLength)).toEqual([300, 10]);
  });
});
