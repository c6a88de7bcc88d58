/**
 * `convert model.gguf --mmproj mmproj.gguf out/` (through `main`, as the CLI runs it) on the kq
 * Q4_K_M pair: every tensor's bytes in the shards are the GGUF's own bytes (q/k rows moved back
 * to the engine's order, nothing re-quantised), its manifest dtype is the GGUF block type, the
 * tokenizer.json it writes gives the same ids as the model's tekken.json, the manifest validates;
 * and the refusals: a GGUF without --mmproj, --mmproj without a GGUF, --dtype with a pair, a
 * .gguf that is not a GGUF (nothing written).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { readGgufHeader } from '../../src/gguf/reader.js';
import { fileSource } from '../../src/gguf/source-node.js';
import { ggufModel } from '../../src/gguf/mapping.js';
import { engineRowOrder, readTensorBytes } from '../../src/gguf/tensor-data.js';
import { loadTokenizer } from '../../src/text/tokenizer.js';
import { validateManifest, type Manifest } from '../../src/weights/manifest.js';
import { sharedDir } from '../fixture-server.js';
import { corpus } from '../helpers/text-corpus.js';

const KQ = join(sharedDir, 'fixtures/gguf/kq');
const TEXT = join(KQ, 'pixtral-kq-tiny-text-q4_k_m.gguf');
const MMPROJ = join(KQ, 'pixtral-kq-tiny-mmproj-f16.gguf');
let root: string;

/** Runs the CLI's main with stdout/stderr captured. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pixtral-convert-gguf-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('convert from a GGUF pair', () => {
  it('keeps every tensor\'s GGUF bytes and block type; the tokenizer gives tekken.json\'s ids', async () => {
    const out = join(root, 'kq');
    const r = await cli(['convert', TEXT, '--mmproj', MMPROJ, out, '--shard-mb', '1', '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const m = validateManifest(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'))) as Manifest;
    expect(m.dtype).toBe('gguf');
    expect(m.shards.length).toBeGreaterThan(1); // 1 MiB shards: tensors run on across shards
    // Block dtypes belong to `gguf` manifests only; ggml types without kernels are not dtypes.
    expect(() => validateManifest({ ...m, dtype: 'q4' })).toThrow(/GGUF block dtype Q\d_K in a "q4" manifest/);
    const q4k = m.tensors.findIndex((t) => t.dtype === 'Q4_K');
    expect(() => validateManifest({ ...m, tensors: m.tensors.map((t, i) => (i === q4k ? { ...t, dtype: 'Q3_K' as never } : t)) })).toThrow(/unknown dtype Q3_K/);

    const sources = { text: fileSource(TEXT), mmproj: fileSource(MMPROJ) };
    const gm = ggufModel(await readGgufHeader(sources.text), await readGgufHeader(sources.mmproj));
    expect(m.tensors.map((t) => t.name)).toEqual(gm.tensors.map((t) => t.name));
    const shards = await Promise.all(m.shards.map((s) => readFile(join(out, s.name))));
    let moved = 0;
    for (const t of gm.tensors) {
      const e = m.tensors.find((x) => x.name === t.name)!;
      const type = t.info.typeName;
      expect(e.dtype, t.name).toBe(type === 'F32' ? 'f32' : type === 'F16' ? 'f16' : type);
      expect(e.shape).toEqual(t.shape);
      const raw = await readTensorBytes(sources[t.file], t.info);
      const stored = Buffer.concat(e.data.map((s) => shards[s.shard]!.subarray(s.offset, s.offset + s.byteLength)));
      // Bit for bit the GGUF's blocks, in the engine's row order (q/k rows of whole blocks moved).
      expect(Buffer.compare(stored, Buffer.from(engineRowOrder(t, raw))), t.name).toBe(0);
      if (t.interleaved && Buffer.compare(stored, Buffer.from(raw)) !== 0) moved++;
    }
    expect(moved).toBeGreaterThan(0);
    expect(new Set(m.tensors.map((t) => t.dtype))).toEqual(new Set(['f32', 'f16', 'Q4_K', 'Q6_K']));

    expect(m.tokenizer).toMatchObject({ file: 'tokenizer.json', kind: 'hf', version: 'v3' });
    const tok = loadTokenizer(await readFile(join(out, 'tokenizer.json')), { version: m.tokenizer!.version });
    const ref = loadTokenizer(readFileSync(join(KQ, 'tekken.json'), 'utf8'));
    expect(tok.specialIds).toEqual(ref.specialIds);
    for (const s of corpus) expect(tok.encode(s)).toEqual(ref.encode(s));
  });

  it('refuses a GGUF without --mmproj, --mmproj without a GGUF, --dtype with a pair, and a .gguf that is not a GGUF (nothing written)', async () => {
    const a = await cli(['convert', TEXT, join(root, 'a')]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/is a GGUF: pass its vision tower with --mmproj mmproj\.gguf/);
    const b = await cli(['convert', TEXT, '--mmproj', MMPROJ, join(root, 'b'), '--dtype', 'q4']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--dtype does not apply to a GGUF pair/);
    const c = await cli(['convert', join(KQ, 'config.json'), '--mmproj', MMPROJ, join(root, 'c'), '--quiet']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--mmproj goes with a text GGUF/);
    const fake = join(await mkdtemp(join(tmpdir(), 'pixtral-fake-gguf-')), 'photo.gguf');
    await writeFile(fake, 'this is not a GGUF file at all');
    const d = await cli(['convert', fake, '--mmproj', MMPROJ, join(root, 'd'), '--quiet']);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/photo\.gguf: not a GGUF file/);
    expect((await readdir(root)).filter((n) => !n.startsWith('kq'))).toEqual([]);
  });
});
