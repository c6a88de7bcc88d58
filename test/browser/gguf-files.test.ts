/**
 * GGUF pairs given as `File` objects (what a file picker returns), built from the fixture bytes:
 * `loadPixtral({ url: file, mmproj: file })` through the worker (the Files are structured-cloned
 * and read in place there) on a kq variant against its float64 goldens, `createEngine` with Files
 * answering a screens question like the float64 reference, nothing written to the IndexedDB
 * cache, and typed errors for a File that is not a GGUF or a File given without its mmproj.
 */
import { describe, expect, it } from 'vitest';
import { createEngine, deleteCachedModel, listCachedModels, loadPixtral } from '../../src/index.js';
import { FormatError } from '../../src/errors.js';
import { expectClose } from '../helpers/close.js';
import { loadCase, tol } from '../golden/cases.js';

const kq = '/shared/fixtures/gguf/kq';
const screens = '/shared/fixtures/gguf/screens';

/** A real File holding a fixture's bytes, as a picker would give it (name, type, bytes). */
async function fixtureFile(path: string): Promise<File> {
  const bytes = await (await fetch(path)).arrayBuffer();
  return new File([bytes], path.split('/').pop()!, { type: 'application/octet-stream' });
}

/**
 * The kq Q4_K_M goldens through a loaded model's `generate`: greedy tokens exactly, prompt logits
 * at the case's own strict tolerance (1e-4): the same blocks and the same f32 forward as the URL path.
 */
async function expectKqQ4KMGoldens(model: Awaited<ReturnType<typeof loadPixtral>>): Promise<void> {
  for (const name of ['text_only', 'one_image_wide']) {
    const c = await loadCase('gguf/kq/goldens/q4_k_m', name);
    const images = (c.json.images ?? []).map((im) => {
      const px = c.inputs[im.pixel_values]!;
      const [, height, width] = px.shape as [number, number, number];
      return { pixels: px.data as Float32Array, height, width };
    });
    const r = await model.generate({ inputIds: c.json.input_ids, images, maxNewTokens: 8, temperature: 0, returnLogits: true });
    expect(r.tokenIds, name).toEqual(c.json.greedy_tokens);
    expectClose(r.logits!, c.expected.logits!.data, tol(c, 'logits', true), `${name} logits`);
  }
}

describe('loadPixtral with File objects', () => {
  it('kq q4_k_m text + f16 mmproj as Files: greedy tokens and prompt logits of the goldens; nothing cached', async () => {
    const before = (await listCachedModels()).length;
    const url = await fixtureFile(`${kq}/pixtral-kq-tiny-text-q4_k_m.gguf`);
    const mmproj = await fixtureFile(`${kq}/pixtral-kq-tiny-mmproj-f16.gguf`);
    const model = await loadPixtral({ url, mmproj, maxContext: 64, kvCache: 'f32' });
    try {
      expect(model.info.dtype).toBe('gguf');
      expect(model.info.name).toBe('pixtral-kq-tiny');
      await expectKqQ4KMGoldens(model);
    } finally {
      await model.dispose();
    }
    // Files are read in place: no copy into the browser's model cache.
    expect((await listCachedModels()).length).toBe(before);
  });

  it('createEngine with a screens Q4_0 pair as Files answers like the float64 reference', async () => {
    const ref = (await (await fetch(`${screens}/ref_answers_dequant.json`)).json()) as {
      pairs: Record<string, { files: [string, string]; answers: { image: string; question_type: string; text: string }[] }>;
    };
    const pair = ref.pairs['q4_0:f16']!;
    const samples = (await (await fetch('/shared/models/pixtral-tiny-screens/samples/questions.json')).json()) as { image: string; question: string; question_type: string }[];
    const engine = await createEngine({ url: await fixtureFile(`${screens}/${pair.files[0]}`), mmproj: await fixtureFile(`${screens}/${pair.files[1]}`), maxContext: 256, kvCache: 'f32' });
    try {
      expect(engine.info.backend).toBe('local');
      for (const a of pair.answers.slice(0, 3)) {
        const s = samples.find((x) => x.image === a.image && x.question_type === a.question_type)!;
        const png = new Uint8Array(await (await fetch(`/shared/models/pixtral-tiny-screens/samples/${s.image}`)).arrayBuffer());
        let b64 = '';
        for (const byte of png) b64 += String.fromCharCode(byte);
        const r = await engine.chat.completions.create({
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${btoa(b64)}` } }, { type: 'text', text: s.question }] }],
          max_tokens: 4,
          temperature: 0,
        });
        expect(r.choices[0]!.message.content, `${a.image} ${a.question_type}`).toBe(a.text);
      }
    } finally {
      await engine.dispose();
    }
  });

  it('a File that is not a GGUF: FormatError naming the file', async () => {
    const png = await fixtureFile('/shared/models/pixtral-tiny-screens/samples/screen_02.png');
    const mmproj = await fixtureFile(`${kq}/pixtral-kq-tiny-mmproj-f16.gguf`);
    const err = await loadPixtral({ url: png, mmproj, maxContext: 64 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/^screen_02\.png: not a GGUF file/);
    const asMmproj = await loadPixtral({ url: mmproj, mmproj: png, maxContext: 64 }).catch((e: unknown) => e);
    expect(asMmproj).toBeInstanceOf(FormatError);
  });

  it('a GGUF pair converted with its blocks kept loads from IndexedDB like any converted model, with the goldens', async () => {
    const url = '/scratch/models/pixtral-kq-tiny-q4_k_m-gguf/'; // test/global-setup.ts converts it
    const model = await loadPixtral({ url, maxContext: 64, kvCache: 'f32' });
    try {
      expect(model.info.dtype).toBe('gguf');
      expect(model.info.fromCache).toBe(false);
      await expectKqQ4KMGoldens(model);
    } finally {
      await model.dispose();
    }
    expect((await listCachedModels()).some((m) => m.url.includes('pixtral-kq-tiny-q4_k_m-gguf'))).toBe(true);
    const again = await loadPixtral({ url, maxContext: 64 });
    expect(again.info.fromCache).toBe(true);
    await again.dispose();
    await deleteCachedModel(new URL(url, location.href).href);
  });

  it('a File url without its mmproj: FormatError before the worker starts', async () => {
    const text = await fixtureFile(`${kq}/pixtral-kq-tiny-text-q4_0.gguf`);
    await expect(loadPixtral({ url: text })).rejects.toThrow(FormatError);
    await expect(loadPixtral({ url: text })).rejects.toThrow(/File or Blob must be a llama\.cpp text GGUF, loaded with its mmproj/);
  });
});
