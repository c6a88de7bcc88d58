/**
 * The converter end to end on the tiny fixtures: HF and native layouts give identical tensors
 * (and shards) for every dtype, mistral3's `model.*` names become canonical, f32 keeps the source
 * values exactly, f16 and q4 equal the reference encoders applied to the source, and every
 * refusal (not a model folder, missing tensor, wrong shape, unsupported dtype, truncated file,
 * existing output) fails clearly without leaving anything that looks like a finished model.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromHf } from '../../src/config.js';
import { FormatError, IntegrityError } from '../../src/errors.js';
import { dequantizeQ4, quantizeQ4 } from '../../src/quant/q4.js';
import { toF16 } from '../../src/util/f16.js';
import { validateManifest, type Manifest, type Segment, type TensorEntry } from '../../src/weights/manifest.js';
import { convert, type ConvertOptions } from '../../cli/convert.js';
import { expectedTensors } from '../../src/weights/tensor-set.js';
import { hfToCanonical } from '../../cli/layouts.js';
import { main } from '../../cli/main.js';
import { OutputExistsError, UnsafeOutputError } from '../../cli/output-dir.js';
import { SafetensorsFile } from '../../cli/safetensors.js';
import { writeSafetensors, type TensorData } from '../../cli/safetensors-writer.js';
import { repoRoot, sharedDir } from '../fixture-server.js';

const FIX = join(sharedDir, 'fixtures');
const PIXTRAL = join(FIX, 'pixtral-tiny-a');
const MISTRAL3 = join(FIX, 'mistral3-tiny-a');
const REPO = repoRoot;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pixtral-convert-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
const outPath = () => join(root, `out-${n++}`);

/** Converts quietly into a fresh folder under the test root, with small shards so tensors span files. */
async function run(input: string, extra: Partial<ConvertOptions> = {}) {
  return convert({ input, output: outPath(), shardMb: 0.25, ...extra });
}

interface Loaded {
  manifest: Manifest;
  shards: Buffer[];
}

async function load(dir: string): Promise<Loaded> {
  const manifest = validateManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
  const shards = await Promise.all(manifest.shards.map((s) => readFile(join(dir, s.name))));
  return { manifest, shards };
}

function gather(l: Loaded, segs: Segment[]): Uint8Array {
  return new Uint8Array(Buffer.concat(segs.map((s) => l.shards[s.shard]!.subarray(s.offset, s.offset + s.byteLength))));
}

/** Source tensors of a fixture safetensors file, as f32, by name. */
async function sourceValues(path: string): Promise<Map<string, { shape: number[]; values: Float32Array }>> {
  const f = await SafetensorsFile.open(path);
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const t of f.tensors.values()) out.set(t.name, { shape: t.shape, values: new Float32Array((await f.read(t, 0, t.byteLength)).buffer) });
  await f.close();
  return out;
}

async function readAll(path: string): Promise<TensorData[]> {
  const f = await SafetensorsFile.open(path);
  const out: TensorData[] = [];
  for (const t of f.tensors.values()) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await f.read(t, 0, t.byteLength) });
  await f.close();
  return out;
}

/** A writable copy of pixtral-tiny-a's HF layout with its tensors edited by `edit`. */
async function editedCopy(edit: (ts: TensorData[]) => TensorData[]): Promise<string> {
  const d = await mkdtemp(join(root, 'src-'));
  await copyFile(join(PIXTRAL, 'config.json'), join(d, 'config.json'));
  await copyFile(join(PIXTRAL, 'tekken.json'), join(d, 'tekken.json'));
  await writeSafetensors(join(d, 'model.safetensors'), edit(await readAll(join(PIXTRAL, 'model.safetensors'))));
  return d;
}

/**
 * Byte equality of two views (vitest's deep toEqual is far too slow on megabyte arrays). On
 * failure the message names the first differing byte.
 */
function expectSameBytes(got: ArrayBufferView, want: ArrayBufferView, what: string): void {
  const a = Buffer.from(got.buffer, got.byteOffset, got.byteLength);
  const b = Buffer.from(want.buffer, want.byteOffset, want.byteLength);
  if (a.equals(b)) return;
  let i = 0;
  while (i < Math.min(a.length, b.length) && a[i] === b[i]) i++;
  expect.fail(`${what}: ${a.length} vs ${b.length} bytes, first difference at byte ${i} (got ${a[i]}, want ${b[i]})`);
}

async function expectNothingLeft(output: string): Promise<void> {
  const siblings = await readdir(dirname(output));
  const base = output.slice(dirname(output).length + 1);
  expect(siblings.filter((s) => s === base || s.startsWith(`${base}.`))).toEqual([]);
}

describe('pixtral-tiny-a: HF and native layouts give identical output', () => {
  it.each(['f32', 'f16', 'q4'] as const)('%s', async (dtype) => {
    const hf = await run(PIXTRAL, { dtype });
    const nat = await run(join(PIXTRAL, 'native'), { dtype });
    expect(hf.layout).toBe('hf');
    expect(nat.layout).toBe('native');
    const a = await load(hf.output);
    const b = await load(nat.output);
    expect(a.manifest.tensors.length).toBe(45);
    expect(b.manifest.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(a.manifest.tensors.map((t) => [t.name, t.dtype, t.shape]));
    for (const [i, ta] of a.manifest.tensors.entries()) {
      const tb = b.manifest.tensors[i]!;
      expectSameBytes(gather(b, tb.data), gather(a, ta.data), ta.name);
      if (ta.quant) expectSameBytes(gather(b, tb.quant!.scales), gather(a, ta.quant.scales), `${ta.name} scales`);
    }
    // Same order and bytes, so the shards themselves are identical.
    expect(b.manifest.shards).toEqual(a.manifest.shards);
    expect(a.manifest.shards.length).toBeGreaterThan(1);
    // params.json has no max_position_embeddings (the native default applies); all else agrees.
    const { maxPositionEmbeddings: _a, ...textA } = a.manifest.config.text;
    const { maxPositionEmbeddings: _b, ...textB } = b.manifest.config.text;
    expect({ ...b.manifest.config, text: textB }).toEqual({ ...a.manifest.config, text: textA });
  });
});

describe('pixtral-tiny-a values', () => {
  let src: Map<string, { shape: number[]; values: Float32Array }>;
  beforeAll(async () => {
    src = await sourceValues(join(PIXTRAL, 'model.safetensors'));
  });

  it('f32 keeps every source value bit for bit, and the shard hashes hold', async () => {
    const l = await load((await run(PIXTRAL, { dtype: 'f32' })).output);
    expect(new Set(l.manifest.tensors.map((t) => t.name))).toEqual(new Set(src.keys()));
    for (const t of l.manifest.tensors) {
      expect(t.dtype).toBe('f32');
      expect(t.shape).toEqual(src.get(t.name)!.shape);
      expectSameBytes(gather(l, t.data), src.get(t.name)!.values, t.name);
      for (const s of t.data) expect(s.offset % 256).toBe(0);
    }
    l.manifest.shards.forEach((s, i) => {
      expect(l.shards[i]!.length).toBe(s.byteLength);
      expect(createHash('sha256').update(l.shards[i]!).digest('hex')).toBe(s.sha256);
    });
    expect(l.manifest.totalBytes).toBe(l.shards.reduce((a, s) => a + s.length, 0));
    const tok = await readFile(join(PIXTRAL, 'tekken.json'));
    expect(l.manifest.tokenizer).toEqual({
      file: 'tekken.json', kind: 'tekken', byteLength: tok.length, sha256: createHash('sha256').update(tok).digest('hex'), version: 'v3',
    });
  });

  it('f16 stores toF16(source), with norms and biases kept f32', async () => {
    const l = await load((await run(PIXTRAL, { dtype: 'f16' })).output);
    for (const t of l.manifest.tensors) {
      const s = src.get(t.name)!;
      const oneD = t.shape.length === 1;
      expect(t.dtype, t.name).toBe(oneD ? 'f32' : 'f16');
      const got = gather(l, t.data);
      expectSameBytes(got, oneD ? s.values : toF16(s.values), t.name);
    }
  });

  it('q4 quantises decoder linears, embedding and lm_head exactly as quantizeQ4; vision f16; norms f32', async () => {
    const r = await run(PIXTRAL, { dtype: 'q4', chunkBytes: 4096 }); // tiny chunks: many row chunks per tensor
    const l = await load(r.output);
    const byName = new Map(l.manifest.tensors.map((t) => [t.name, t]));
    const q4Names = [...byName.values()].filter((t) => t.dtype === 'q4').map((t) => t.name);
    expect(q4Names.sort()).toEqual(
      [...src.keys()].filter((k) => k.startsWith('language_model.') && !k.endsWith('norm.weight')).sort(),
    );
    for (const t of byName.values()) {
      if (t.name.startsWith('vision_tower.') || t.name.startsWith('multi_modal_projector.')) {
        expect(t.dtype, t.name).toBe(t.shape.length === 1 ? 'f32' : 'f16');
      }
    }
    for (const name of q4Names) {
      const t = byName.get(name)! as TensorEntry;
      const s = src.get(name)!;
      const [rows, cols] = s.shape as [number, number];
      const want = quantizeQ4(s.values, rows, cols);
      const got = {
        rows, cols,
        qweight: new Uint32Array(gather(l, t.data).slice().buffer),
        scales: new Uint16Array(gather(l, t.quant!.scales).slice().buffer),
      };
      expect(t.quant).toMatchObject({ format: 'q4g32', groupSize: 32 });
      expectSameBytes(got.qweight, want.qweight, name);
      expectSameBytes(got.scales, want.scales, `${name} scales`);
      expectSameBytes(dequantizeQ4(got), dequantizeQ4(want), `${name} dequantised`);
    }
    const files = await readdir(r.output);
    expect(files.sort()).toEqual(['manifest.json', 'tekken.json', ...l.manifest.shards.map((s) => s.name)].sort());
  });

  it('--vision-dtype f32 keeps the vision tower and projector f32 under q4', async () => {
    const l = await load((await run(PIXTRAL, { dtype: 'q4', visionDtype: 'f32' })).output);
    const t = l.manifest.tensors.find((x) => x.name === 'vision_tower.transformer.layers.0.attention.q_proj.weight')!;
    expect(t.dtype).toBe('f32');
    expectSameBytes(gather(l, t.data), src.get(t.name)!.values, t.name);
  });
});

describe('mistral3-tiny-a', () => {
  it('converts with canonical names and unchanged f32 values', async () => {
    const r = await run(MISTRAL3, { dtype: 'f32' });
    const l = await load(r.output);
    const cfg = configFromHf(JSON.parse(await readFile(join(MISTRAL3, 'config.json'), 'utf8')) as Record<string, unknown>);
    expect(l.manifest.config.modelType).toBe('mistral3');
    expect(l.manifest.tensors.map((t) => t.name)).toEqual(expectedTensors(cfg).map((e) => e.name));
    expect(l.manifest.tensors.some((t) => t.name.startsWith('model.') || t.name === 'lm_head.weight')).toBe(false);
    expect(l.manifest.tensors.map((t) => t.name)).toContain('multi_modal_projector.patch_merger.merging_layer.weight');
    const src = await sourceValues(join(MISTRAL3, 'model.safetensors'));
    expect(src.size).toBe(l.manifest.tensors.length);
    for (const [name, s] of src) {
      const t = l.manifest.tensors.find((x) => x.name === hfToCanonical(name))!;
      expectSameBytes(gather(l, t.data), s.values, name);
    }
  });
});

describe('other source shapes', () => {
  it('a multi-file HF checkpoint with model.safetensors.index.json gives the same shards', async () => {
    const all = await readAll(join(PIXTRAL, 'model.safetensors'));
    const d = await mkdtemp(join(root, 'multi-'));
    await copyFile(join(PIXTRAL, 'config.json'), join(d, 'config.json'));
    const parts = [all.slice(0, 20), all.slice(20)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of parts.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(join(d, file), part);
      for (const t of part) weightMap[t.name] = file;
    }
    await writeFile(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const multi = await run(d, { dtype: 'q4' });
    const single = await run(PIXTRAL, { dtype: 'q4' });
    expect(multi.manifest.shards).toEqual(single.manifest.shards);
    expect(multi.manifest.tokenizer).toBeNull();
    expect(multi.warnings.join('\n')).toMatch(/no tekken\.json or tokenizer\.json/);
  });

  it('tied embeddings: no lm_head needed; unused source tensors are skipped with a warning', async () => {
    const d = await editedCopy((ts) => [
      ...ts.filter((t) => t.name !== 'language_model.lm_head.weight'),
      { name: 'language_model.model.rotary_emb.inv_freq', dtype: 'F32', shape: [16], data: new Float32Array(16) },
    ]);
    const cfg = JSON.parse(await readFile(join(d, 'config.json'), 'utf8')) as { text_config: Record<string, unknown> };
    cfg.text_config.tie_word_embeddings = true;
    await writeFile(join(d, 'config.json'), JSON.stringify(cfg));
    const r = await run(d, { dtype: 'f16' });
    expect(r.manifest.tensors.map((t) => t.name)).not.toContain('language_model.lm_head.weight');
    expect(r.manifest.tensors).toHaveLength(44);
    expect(r.manifest.config.text.tieWordEmbeddings).toBe(true);
    expect(r.warnings).toContain('1 source tensor(s) not used by the model, skipped: language_model.model.rotary_emb.inv_freq');
  });
});

describe('tokenizer version in the manifest', () => {
  /** A copy of a fixture's HF layout where `tokenizer` decides the tokenizer file(s). */
  async function withTokenizer(fixture: string, tokenizer: Record<string, string>, configEdit?: (c: Record<string, unknown>) => void) {
    const d = await mkdtemp(join(root, 'tok-'));
    await copyFile(join(fixture, 'model.safetensors'), join(d, 'model.safetensors'));
    const cfg = JSON.parse(await readFile(join(fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
    configEdit?.(cfg);
    await writeFile(join(d, 'config.json'), JSON.stringify(cfg));
    for (const [name, text] of Object.entries(tokenizer)) await writeFile(join(d, name), text);
    return d;
  }
  const tekken = async (fixture: string, version: string | undefined) => {
    const j = JSON.parse(await readFile(join(fixture, 'tekken.json'), 'utf8')) as { config: Record<string, unknown> };
    if (version === undefined) delete j.config.version;
    else j.config.version = version;
    return JSON.stringify(j);
  };
  const hfTokenizer = '{"model":{"type":"BPE","vocab":{},"merges":[]}}';

  it("takes tekken.json's config.version, with the file's size and SHA-256", async () => {
    const text = await tekken(MISTRAL3, 'v7');
    const r = await run(await withTokenizer(MISTRAL3, { 'tekken.json': text }), { dtype: 'f32' });
    expect(r.manifest.tokenizer).toEqual({
      file: 'tekken.json', kind: 'tekken', version: 'v7', byteLength: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex'),
    });
    expect(validateManifest(JSON.parse(await readFile(join(r.output, 'manifest.json'), 'utf8'))).tokenizer?.version).toBe('v7');
  });

  it("a tokenizer.json: the checkpoint's tokenizer_version, else v3 for Pixtral, else none with a warning", async () => {
    const pixtral = await run(await withTokenizer(PIXTRAL, { 'tokenizer.json': hfTokenizer }), { dtype: 'f32' });
    expect(pixtral.manifest.tokenizer).toMatchObject({ file: 'tokenizer.json', kind: 'hf', version: 'v3' });
    const stated = await run(await withTokenizer(MISTRAL3, { 'tokenizer.json': hfTokenizer }, (c) => (c.tokenizer_version = 'v7')), { dtype: 'f32' });
    expect(stated.manifest.tokenizer?.version).toBe('v7');
    const silent = await run(await withTokenizer(MISTRAL3, { 'tokenizer.json': hfTokenizer }), { dtype: 'f32' });
    expect(silent.manifest.tokenizer).not.toHaveProperty('version');
    expect(silent.warnings.join('\n')).toMatch(/no tokenizer version in tokenizer.json, params.json or config.json/);
    // A tekken.json without a version on a Pixtral checkpoint: the stated default.
    const old = await run(await withTokenizer(PIXTRAL, { 'tekken.json': await tekken(PIXTRAL, undefined) }), { dtype: 'f32' });
    expect(old.manifest.tokenizer?.version).toBe('v3');
  });

  it('refuses a version that is not one', async () => {
    const d = await withTokenizer(MISTRAL3, { 'tekken.json': await tekken(MISTRAL3, '../7') });
    await expect(run(d, { dtype: 'f32' })).rejects.toThrow(/tekken\.json: config\.version must be a version name like "v3" \(got "\.\.\/7"\)/);
    const p = await withTokenizer(MISTRAL3, { 'tokenizer.json': hfTokenizer }, (c) => (c.tokenizer_version = 7));
    await expect(run(p, { dtype: 'f32' })).rejects.toThrow(/config\.json: tokenizer_version must be a version name like "v3" \(got 7\)/);
  });
});

describe('refusals', () => {
  it('a folder that is neither layout', async () => {
    const d = await mkdtemp(join(root, 'empty-'));
    await writeFile(join(d, 'config.json'), '{}');
    const output = outPath();
    const err = await convert({ input: d, output }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/not a model folder: looked for config\.json \+ model\*\.safetensors .* params\.json \+ consolidated\*\.safetensors/);
    await expectNothingLeft(output);
  });

  it('a missing tensor, by canonical name', async () => {
    const d = await editedCopy((ts) => ts.filter((t) => t.name !== 'language_model.model.layers.1.mlp.up_proj.weight'));
    const output = outPath();
    await expect(convert({ input: d, output })).rejects.toThrow(/missing tensor "language_model\.model\.layers\.1\.mlp\.up_proj\.weight"/);
    await expectNothingLeft(output);
  });

  it('a shape that disagrees with the config, expected vs got', async () => {
    const d = await editedCopy((ts) =>
      ts.map((t) => (t.name === 'language_model.model.layers.0.self_attn.k_proj.weight' ? { ...t, shape: [96, 64] } : t)),
    );
    const output = outPath();
    const err = await convert({ input: d, output }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toBe(
      'tensor "language_model.model.layers.0.self_attn.k_proj.weight": shape mismatch: expected [64, 96] from the config, got [96, 64]',
    );
    await expectNothingLeft(output);
  });

  it.each(['F64', 'I64'])('a %s weight, naming the dtype', async (dtype) => {
    const d = await editedCopy((ts) =>
      ts.map((t) =>
        t.name === 'language_model.model.norm.weight' ? { ...t, dtype, data: dtype === 'F64' ? new Float64Array(96) : new BigInt64Array(96) } : t,
      ),
    );
    const output = outPath();
    await expect(convert({ input: d, output })).rejects.toThrow(
      new RegExp(`"language_model\\.model\\.norm\\.weight": dtype ${dtype} is not supported \\(supported: BF16, F16, F32\\)`),
    );
    await expectNothingLeft(output);
  });

  it('a truncated safetensors file', async () => {
    const d = await editedCopy((ts) => ts);
    await truncate(join(d, 'model.safetensors'), 2_000_000);
    const output = outPath();
    const err = await convert({ input: d, output }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/model\.safetensors: truncated: tensor "[\w.]+" ends at byte \d+ but the file has only 2000000 bytes/);
    await expectNothingLeft(output);
  });

  it('a failure half-way leaves no output and no temp folder', async () => {
    const output = outPath();
    const ac = new AbortController();
    let calls = 0;
    const err = await convert({
      input: PIXTRAL, output, dtype: 'f32', shardMb: 0.25, chunkBytes: 4096, signal: ac.signal,
      onProgress: (p) => {
        if (++calls === 40) ac.abort(new Error('stop here'));
        expect(p.index).toBeLessThan(p.count);
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('stop here');
    expect(calls).toBeGreaterThanOrEqual(40);
    await expectNothingLeft(output);
  });

  it('a non-empty output folder, unless forced; --force replaces only a previous conversion', async () => {
    const output = outPath();
    await mkdir(output);
    await writeFile(join(output, 'keep.txt'), 'mine');
    await expect(convert({ input: PIXTRAL, output })).rejects.toThrow(OutputExistsError);
    // Not a previous conversion: --force refuses too, and nothing is touched.
    const err = await convert({ input: PIXTRAL, output, force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeOutputError);
    expect((err as Error).message).toMatch(/--force replaces only a previous conversion, and it holds no manifest.json/);
    expect(await readdir(output)).toEqual(['keep.txt']);

    const prev = outPath();
    await convert({ input: PIXTRAL, output: prev, dtype: 'f32', shardMb: 0.25 });
    const r = await convert({ input: PIXTRAL, output: prev, force: true, dtype: 'f16' });
    expect(await readdir(prev)).toContain('manifest.json');
    expect(r.manifest.dtype).toBe('f16');
    expect((await readdir(root)).filter((s) => s.includes('.old-') || s.includes('.tmp-'))).toEqual([]);

    // A previous conversion that someone added a file to is no longer only ours.
    await writeFile(join(prev, 'notes.txt'), 'mine too');
    await expect(convert({ input: PIXTRAL, output: prev, force: true })).rejects.toThrow(/holds files the previous conversion did not write: notes.txt/);
    expect(await readFile(join(prev, 'notes.txt'), 'utf8')).toBe('mine too');
    // A manifest.json that is not ours.
    const other = outPath();
    await mkdir(other);
    await writeFile(join(other, 'manifest.json'), '{"name":"someone else\'s"}');
    await expect(convert({ input: PIXTRAL, output: other, force: true })).rejects.toThrow(/not a pixtral-webgpu manifest/);
  });

  it('an output folder that is, contains or lies inside the input, also through symlinks', async () => {
    // ./proj/ckpt/pixtral -> ./proj with --force used to leave only the new files.
    const proj = await mkdtemp(join(root, 'proj-'));
    const input = join(proj, 'ckpt', 'pixtral');
    await mkdir(input, { recursive: true });
    for (const f of ['config.json', 'tekken.json', 'model.safetensors']) await copyFile(join(PIXTRAL, f), join(input, f));
    const before = (await readdir(input)).sort();
    const refused = async (output: string, re: RegExp) => {
      const err = await convert({ input, output, force: true }).catch((e: unknown) => e);
      expect(err, output).toBeInstanceOf(UnsafeOutputError);
      expect((err as Error).message).toMatch(re);
    };
    await refused(proj, /it contains the input folder/);
    await refused(join(proj, 'ckpt'), /it contains the input folder/);
    await refused(input, /it is the input folder/);
    await refused(join(input, 'out'), /it lies inside the input folder/);
    await symlink(input, join(proj, 'link'));
    await refused(join(proj, 'link'), /it is the input folder/);
    await refused(join(proj, 'link', 'deeper', 'out'), /it lies inside the input folder/);
    // The input given through a symlink and the output its real parent.
    const err = await convert({ input: join(proj, 'link'), output: join(proj, 'ckpt'), force: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeOutputError);
    expect(await readdir(proj)).toEqual(['ckpt', 'link']);
    expect((await readdir(input)).sort()).toEqual(before);
    expect(await main(['convert', input, proj, '--force', '--quiet'])).toBe(1);
    expect((await readdir(input)).sort()).toEqual(before);
    // A sibling whose name starts with the input's is not inside it.
    const r = await convert({ input, output: `${input}-q4`, shardMb: 0.25 });
    expect(r.manifest.tensors.length).toBe(45);
  });

  it('reports progress up to every source byte', async () => {
    const seen: number[] = [];
    const r = await run(PIXTRAL, { dtype: 'f16', onProgress: (p) => seen.push(p.bytesRead / p.totalBytes) });
    expect(seen.at(-1)).toBe(1);
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]!)).toBe(true);
    expect(r.bytesRead).toBe(2_899_840);
  });
});

describe('command line', () => {
  it('exit codes: 2 for usage errors, 1 for conversion errors, 0 on success', async () => {
    const quiet = { stdout: process.stdout.write, stderr: process.stderr.write };
    const errs: string[] = [];
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main([])).toBe(2);
      expect(await main(['convert', PIXTRAL])).toBe(2);
      expect(await main(['convert', PIXTRAL, outPath(), '--dtype', 'q8'])).toBe(2);
      expect(await main(['convert', PIXTRAL, outPath(), '--shard-mb', '-1'])).toBe(2);
      expect(await main(['convert', PIXTRAL, outPath(), '--bogus'])).toBe(2);
      expect(await main(['--help'])).toBe(0);
      errs.length = 0;
      expect(await main(['convert', root, outPath()])).toBe(1);
      expect(errs.join('')).toMatch(/^pixtral-webgpu: error: .* is not a model folder[^\n]*\n$/);
      expect(await main(['convert', join(PIXTRAL, 'native'), outPath(), '--quiet', '--dtype', 'f16'])).toBe(0);
    } finally {
      process.stdout.write = quiet.stdout;
      process.stderr.write = quiet.stderr;
    }
  });

  it('bin/pixtral-webgpu.js runs the converter from a source checkout', () => {
    const output = outPath();
    const r = spawnSync(process.execPath, [join(REPO, 'bin/pixtral-webgpu.js'), 'convert', PIXTRAL, output, '--json', '--dtype', 'q4'], {
      encoding: 'utf8',
    });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout) as { tensors: number; shards: number; peakRssBytes: number };
    expect(summary.tensors).toBe(45);
    expect(summary.peakRssBytes).toBeGreaterThan(0);
    const bad = spawnSync(process.execPath, [join(REPO, 'bin/pixtral-webgpu.js'), 'convert'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
  });
});
