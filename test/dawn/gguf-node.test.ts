/**
 * GGUF pairs through the Node entry (`pixtral-webgpu/node` `loadPixtral`, in-process on Dawn):
 * local paths read in place, and http URLs from a real local server (Range requests, the file's
 * SHA-256 as ETag) downloaded in chunks into the disk cache, then loaded from it with only the
 * two 1-byte probes, and offline with no request;
 * greedy tokens exact and every prompt logit within the case's strict tolerance against the
 * `kq` float64 goldens (f32 KV cache, so the comparison is the f32 model's), and llama.cpp's F32
 * mistral3 pair (`test/fixtures/gguf-mistral3`) against the mistral3 goldens. Needs a Dawn
 * adapter (lavapipe on CI: VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json).
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPixtral } from '../../src/node/model.js';
import type { LoadProgress } from '../../src/weights/progress.js';
import { expectClose } from '../helpers/close.js';
import { parseSafetensors } from '../helpers/safetensors.js';
import { repoFixturesDir, sharedDir } from '../fixture-server.js';

const kq = resolve(sharedDir, 'fixtures/gguf/kq');
let server: Server;
let base: string;
const ranges: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const file = resolve(kq, decodeURIComponent(new URL(req.url!, 'http://x').pathname.slice(1)));
    const size = statSync(file).size;
    // As Hugging Face serves LFS files: the file's SHA-256 as its ETag.
    res.setHeader('ETag', `"${createHash('sha256').update(readFileSync(file)).digest('hex')}"`);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200, { 'Content-Length': size });
      createReadStream(file).pipe(res);
      return;
    }
    ranges.push(req.headers.range!);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), size - 1);
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'pixtral-gguf-node-'));
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(cacheDir, { recursive: true, force: true });
});

function safetensors(path: string) {
  const b = readFileSync(path);
  return parseSafetensors(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

/**
 * One golden case through the Node model's `generate`: its ids and preprocessed images in, 8
 * greedy tokens exactly and every prompt logit within the case's strict tolerance.
 */
async function checkCase(model: Awaited<ReturnType<typeof loadPixtral>>, dir: string, what: string): Promise<void> {
  const c = JSON.parse(readFileSync(resolve(dir, 'case.json'), 'utf8')) as {
    input_ids: number[]; greedy_tokens: number[]; images?: { pixel_values: string }[]; tolerances: Record<string, { atol_strict: number; rtol_strict: number }>;
  };
  const inputs = safetensors(resolve(dir, 'inputs.safetensors'));
  const exp = safetensors(resolve(dir, 'expected.safetensors'));
  const images = (c.images ?? []).map((im) => {
    const px = inputs[im.pixel_values]!;
    const [, height, width] = px.shape as [number, number, number];
    return { pixels: px.data as Float32Array, height, width };
  });
  const r = await model.generate({ inputIds: c.input_ids, images, maxNewTokens: 8, temperature: 0, returnLogits: true });
  expect(r.tokenIds).toEqual(c.greedy_tokens);
  const t = c.tolerances.logits!;
  expectClose(r.logits!, exp.logits!.data, { atol: t.atol_strict, rtol: t.rtol_strict }, `${what} logits`);
}

describe('Node loadPixtral({ url, mmproj }) on kq GGUFs', () => {
  const both = ['text_only', 'one_image_wide'] as const;
  const runs = [
    ...(['f16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_k_s', 'q4_0'] as const).map((v) => [v, 'path', both] as const),
    ['q6_k', 'http', both] as const,
    ['q6_k', 'http, cached', ['text_only']] as const,
    ['q6_k', 'http, offline', ['text_only']] as const,
  ];
  for (const [variant, where, cases] of runs) {
    it(`${variant} by ${where}: greedy tokens and prompt logits of ${cases.join(', ')}`, async () => {
      const at = (f: string) => (where === 'path' ? resolve(kq, f) : `${base}/${f}`); // http ones share `cacheDir`, in order
      ranges.length = 0;
      const model = await loadPixtral({
        url: at(`pixtral-kq-tiny-text-${variant}.gguf`), mmproj: at('pixtral-kq-tiny-mmproj-f16.gguf'), maxContext: 64, kvCache: 'f32',
        cacheDir, offline: where === 'http, offline',
      });
      try {
        expect(model.info.dtype).toBe('gguf');
        // First: per file a probe, one header read and one 32 MiB chunk (not one Range per tensor).
        if (where === 'http') expect(ranges).toHaveLength(6);
        if (where === 'http, cached') expect(ranges).toEqual(['bytes=0-0', 'bytes=0-0']);
        if (where === 'http, offline') expect(ranges).toEqual([]);
        expect(model.info.fromCache).toBe(where !== 'http' && where !== 'path' ? true : false);
        for (const name of cases) await checkCase(model, resolve(kq, `goldens/${variant}/cases/${name}`), `${variant} ${name}`);
      } finally {
        await model.dispose();
      }
    });
  }
});

describe('Node loadPixtral({ url, mmproj }): the load phases', () => {
  it('compiles every pipeline during load, as for converted models (compile events, then done with all compiled)', async () => {
    const events: LoadProgress[] = [];
    const model = await loadPixtral({
      url: resolve(kq, 'pixtral-kq-tiny-text-q4_k_m.gguf'), mmproj: resolve(kq, 'pixtral-kq-tiny-mmproj-f16.gguf'), maxContext: 64,
      onProgress: (p) => events.push(p),
    });
    try {
      const compile = events.filter((e) => e.phase === 'compile');
      expect(compile.length).toBeGreaterThan(0);
      const done = events.at(-1)!;
      expect(done.phase).toBe('done');
      expect(done.pipelinesTotal).toBeGreaterThan(10);
      expect(done.pipelinesCompiled).toBe(done.pipelinesTotal);
    } finally {
      await model.dispose();
    }
  });
});

describe('Node loadPixtral({ url, mmproj }) on the mistral3 GGUF pair (llama.cpp arch mistral3, merger mmproj)', () => {
  const dir = resolve(repoFixturesDir, 'gguf-mistral3');
  const cases = resolve(sharedDir, 'fixtures/mistral3-tiny-a/cases');
  it('greedy tokens and prompt logits of text_only, one_image_wide and two_images against the mistral3 goldens', async () => {
    const model = await loadPixtral({
      url: resolve(dir, 'mistral3-tiny-a-text-f32.gguf'), mmproj: resolve(dir, 'mistral3-tiny-a-mmproj-f32.gguf'), maxContext: 128, kvCache: 'f32',
    });
    try {
      expect(model.info.dtype).toBe('gguf');
      for (const name of ['text_only', 'one_image_wide', 'two_images']) await checkCase(model, resolve(cases, name), `mistral3 gguf ${name}`);
    } finally {
      await model.dispose();
    }
  });
});
