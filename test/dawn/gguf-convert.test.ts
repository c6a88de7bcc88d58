/**
 * `pixtral-webgpu convert model.gguf --mmproj mmproj.gguf out/` (the real binary, a child
 * process), then the converted folder through the Node entry on Dawn (lavapipe in CI), beside
 * the GGUF pair itself: on the kq Q4_K_M variant (Q4_K and Q6_K blocks) the converted model gives
 * the goldens' greedy tokens and the very same prompt logits as the pair, and on the screens
 * Q4_0 pair it answers sample questions as the pair and the float64 reference do. The manifest
 * records each tensor's GGUF block dtype (no re-quantisation).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPixtral } from '../../src/node/model.js';
import type { Manifest } from '../../src/weights/manifest.js';
import type { LoadProgress } from '../../src/weights/progress.js';
import { parseSafetensors } from '../helpers/safetensors.js';
import { sharedDir } from '../fixture-server.js';
import { runCli, SAMPLES, type CliRun } from './node/samples.js';

const KQ = resolve(sharedDir, 'fixtures/gguf/kq');
const SCREENS = resolve(sharedDir, 'fixtures/gguf/screens');
let dir: string;

function convert(text: string, mmproj: string, out: string, extra: string[] = []): Promise<CliRun> {
  return runCli(['convert', text, '--mmproj', mmproj, out, '--json', '--quiet', ...extra]);
}

function safetensors(path: string) {
  const b = readFileSync(path);
  return parseSafetensors(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pixtral-gguf-convert-'));
});

describe('convert from a GGUF pair, loaded beside the pair', () => {
  it('kq Q4_K_M: block dtypes recorded, greedy tokens of the goldens, prompt logits equal to the pair\'s', async () => {
    const text = join(KQ, 'pixtral-kq-tiny-text-q4_k_m.gguf');
    const mmproj = join(KQ, 'pixtral-kq-tiny-mmproj-f16.gguf');
    const out = join(dir, 'kq-q4_k_m');
    // 1 MiB shards: tensors run on from one shard into the next (read back across the seam).
    const r = await convert(text, mmproj, out, ['--shard-mb', '1']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest;
    expect(m.dtype).toBe('gguf');
    expect(m.shards.length).toBeGreaterThan(1);
    const dtype = (name: string) => m.tensors.find((t) => t.name === name)?.dtype;
    // llama-quantize's Q4_K_M choices (fixture README): Q6_K output and blk.1 attn_v / ffn_down.
    expect(dtype('language_model.lm_head.weight')).toBe('Q6_K');
    expect(dtype('language_model.model.layers.0.self_attn.q_proj.weight')).toBe('Q4_K');
    expect(dtype('language_model.model.layers.1.self_attn.v_proj.weight')).toBe('Q6_K');
    expect(dtype('language_model.model.layers.1.mlp.down_proj.weight')).toBe('Q6_K');
    expect(dtype('language_model.model.norm.weight')).toBe('f32');

    const events: LoadProgress[] = [];
    const converted = await loadPixtral({ url: out, maxContext: 64, kvCache: 'f32', onProgress: (e) => events.push(e) });
    // Upload progress in bytes up to every tensor byte, as for the other dtypes.
    const uploads = events.filter((e) => e.phase === 'upload');
    expect(uploads.length).toBeGreaterThan(0);
    expect(uploads.at(-1)!.loadedBytes).toBe(m.tensors.reduce((a, t) => a + t.data.reduce((b, s) => b + s.byteLength, 0), 0));
    expect(uploads.at(-1)!.loadedBytes).toBe(uploads.at(-1)!.totalBytes);
    const pair = await loadPixtral({ url: text, mmproj, maxContext: 64, kvCache: 'f32' });
    try {
      expect(converted.info.dtype).toBe('gguf');
      expect(converted.info.weightBytes).toBe(pair.info.weightBytes);
      for (const name of ['text_only', 'one_image_wide']) {
        const cdir = join(KQ, `goldens/q4_k_m/cases/${name}`);
        const c = JSON.parse(readFileSync(join(cdir, 'case.json'), 'utf8')) as { input_ids: number[]; greedy_tokens: number[]; images?: { pixel_values: string }[] };
        const inputs = safetensors(join(cdir, 'inputs.safetensors'));
        const images = (c.images ?? []).map((im) => {
          const px = inputs[im.pixel_values]!;
          const [, height, width] = px.shape as [number, number, number];
          return { pixels: px.data as Float32Array, height, width };
        });
        const req = { inputIds: c.input_ids, images, maxNewTokens: 8, temperature: 0, returnLogits: true };
        const a = await converted.generate(req);
        const b = await pair.generate(req);
        expect(a.tokenIds, name).toEqual(c.greedy_tokens);
        expect(b.tokenIds, name).toEqual(c.greedy_tokens);
        // Tolerance 0: the same blocks through the same kernels on the same adapter.
        expect(Array.from(a.logits!), `${name} logits`).toEqual(Array.from(b.logits!));
      }
    } finally {
      await converted.dispose();
      await pair.dispose();
    }
  }, 900_000);

  it('screens Q4_0: the converted model answers sample questions as the pair and the float64 reference', async () => {
    const ref = JSON.parse(readFileSync(join(SCREENS, 'ref_answers_dequant.json'), 'utf8')) as {
      pairs: Record<string, { files: [string, string]; answers: { image: string; question_type: string; text: string }[] }>;
    };
    const questions = JSON.parse(readFileSync(join(SAMPLES, 'questions.json'), 'utf8')) as { image: string; question: string; question_type: string }[];
    const p = ref.pairs['q4_0:f16']!;
    const [text, mmproj] = p.files.map((f) => join(SCREENS, f)) as [string, string];
    const out = join(dir, 'screens-q4_0');
    const r = await convert(text, mmproj, out);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dtype: 'gguf', tensors: 63 });
    const converted = await loadPixtral({ url: out, maxContext: 256 });
    const pair = await loadPixtral({ url: text, mmproj, maxContext: 256 });
    try {
      expect(converted.info.kvCache).toBe(pair.info.kvCache);
      for (const a of p.answers.filter((x) => x.image === 'screen_06.png')) {
        const q = questions.find((x) => x.image === a.image && x.question_type === a.question_type)!;
        const msgs = [{ role: 'user' as const, content: [{ type: 'image' as const, image: join(SAMPLES, q.image) }, { type: 'text' as const, text: q.question }] }];
        const mine = await converted.complete(msgs, { maxTokens: 4 });
        const theirs = await pair.complete(msgs, { maxTokens: 4 });
        expect(mine.text, `${a.image} ${a.question_type}`).toBe(a.text);
        expect(theirs.text).toBe(a.text);
      }
    } finally {
      await converted.dispose();
      await pair.dispose();
    }
  }, 900_000);
});
