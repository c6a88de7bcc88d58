/**
 * llama.cpp GGUF pairs through the public entry points, served over real HTTP with Range
 * requests by the fixture server: `loadPixtral({ url, mmproj })` (worker) on every `kq` variant
 * against its float64 goldens (greedy tokens exact, every prompt logit within the case's strict
 * tolerance, with an f32 KV cache so the comparison is the f32 model's), the `screens` pairs
 * answering the 36 sample questions as the float64 reference does on the same dequantised
 * weights, and truncated or tampered files refused with typed errors.
 */
import { describe, expect, it } from 'vitest';
import { loadPixtral } from '../../src/index.js';
import { Engine, type ChatMessage } from '../../src/engine/index.js';
import { FormatError, IntegrityError } from '../../src/errors.js';
import { expectClose } from '../helpers/close.js';
import { loadCase, tol } from '../golden/cases.js';

const kq = '/shared/fixtures/gguf/kq';
const screens = '/shared/fixtures/gguf/screens';

describe('loadPixtral({ url, mmproj }) on the kq GGUF variants', () => {
  for (const variant of ['f16', 'q8_0', 'q6_k', 'q5_k_m', 'q4_k_m', 'q4_k_s', 'q4_0']) {
    it(`${variant}: greedy tokens and prompt logits of text_only and one_image_wide`, async () => {
      const model = await loadPixtral({ url: `${kq}/pixtral-kq-tiny-text-${variant}.gguf`, mmproj: `${kq}/pixtral-kq-tiny-mmproj-f16.gguf`, maxContext: 64, kvCache: 'f32' });
      try {
        expect(model.info.dtype).toBe('gguf');
        expect(model.info.name).toBe('pixtral-kq-tiny');
        for (const name of ['text_only', 'one_image_wide']) {
          const c = await loadCase(`gguf/kq/goldens/${variant}`, name);
          const images = (c.json.images ?? []).map((im) => {
            const px = c.inputs[im.pixel_values]!;
            const [, height, width] = px.shape as [number, number, number];
            return { pixels: px.data as Float32Array, height, width };
          });
          const r = await model.generate({ inputIds: c.json.input_ids, images, maxNewTokens: 8, temperature: 0, returnLogits: true });
          expect(r.tokenIds, `${variant} ${name}`).toEqual(c.json.greedy_tokens);
          expectClose(r.logits!, c.expected.logits!.data, tol(c, 'logits', true), `${variant} ${name} logits`);
        }
      } finally {
        await model.dispose();
      }
    });
  }
});

interface Sample {
  image: string;
  question: string;
  question_type: string;
}
interface RefAnswers {
  pairs: Record<string, { files: [string, string] | null; answers: { image: string; question_type: string; text: string }[] }>;
}

describe('screens GGUF pairs answer the sample questions like the float64 reference', async () => {
  const samples = (await (await fetch('/shared/models/pixtral-tiny-screens/samples/questions.json')).json()) as Sample[];
  const ref = (await (await fetch(`${screens}/ref_answers_dequant.json`)).json()) as RefAnswers;
  for (const pair of ['f16:f16', 'q8_0:f16', 'q4_0:f16', 'q4_k_m:f16']) {
    it(`${pair}: 36/36 as the reference on the same weights`, async () => {
      const [textFile, mmFile] = ref.pairs[pair]!.files!;
      const e = new Engine();
      try {
        await e.load({ url: `${screens}/${textFile}`, mmproj: `${screens}/${mmFile}`, maxContext: 256, kvCache: 'f32' });
        let same = 0;
        const diffs: string[] = [];
        for (const a of ref.pairs[pair]!.answers) {
          const s = samples.find((x) => x.image === a.image && x.question_type === a.question_type)!;
          const image = await (await fetch(`/shared/models/pixtral-tiny-screens/samples/${s.image}`)).blob();
          const msgs: ChatMessage[] = [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: s.question }] }];
          const r = await e.chat(msgs, { maxTokens: 4 });
          if (r.text === a.text) same++;
          else diffs.push(`${a.image} ${a.question_type}: ${JSON.stringify(r.text)} vs ${JSON.stringify(a.text)}`);
        }
        console.log(`[gguf screens] ${pair}: ${same}/36 as the reference${diffs.length ? `; differ: ${diffs.join('; ')}` : ''}`);
        expect(diffs).toEqual([]);
      } finally {
        await e.dispose();
      }
    });
  }
});

describe('truncated or tampered GGUF files', () => {
  const url = `${kq}/pixtral-kq-tiny-text-q4_k_m.gguf`;
  const mmproj = `${kq}/pixtral-kq-tiny-mmproj-f16.gguf`;
  /** A fetch that serves `url` through `edit` (Range answers of a file cut or changed). */
  function editing(target: string, edit: (body: Uint8Array, start: number, total: number) => { body: Uint8Array; total: number }): typeof fetch {
    return async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith(target) || res.status !== 206) return res;
      const m = /bytes (\d+)-(\d+)\/(\d+)/.exec(res.headers.get('Content-Range')!)!;
      const start = Number(m[1]);
      const out = edit(new Uint8Array(await res.arrayBuffer()), start, Number(m[3]));
      if (start >= out.total) return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${out.total}` } });
      const body = out.body.subarray(0, Math.max(0, out.total - start));
      return new Response(new Blob([body as Uint8Array<ArrayBuffer>]), { status: 206, headers: { 'Content-Range': `bytes ${start}-${start + body.byteLength - 1}/${out.total}` } });
    };
  }

  it('a truncated text file: IntegrityError naming it, before any weight is read', async () => {
    const e = new Engine();
    const f = editing('text-q4_k_m.gguf', (body, _s, total) => ({ body, total: total - 4096 }));
    await expect(e.load({ url, mmproj, fetch: f })).rejects.toThrow(IntegrityError);
    await expect(e.load({ url, mmproj, fetch: f })).rejects.toThrow(/text-q4_k_m\.gguf: truncated/);
    await e.dispose();
  });

  it('a tampered mmproj (wrong magic, unknown tensor type): FormatError naming the file', async () => {
    const e = new Engine();
    const magic = editing('mmproj-f16.gguf', (body, start, total) => {
      const b = body.slice();
      if (start === 0) b[0] = 0x58;
      return { body: b, total };
    });
    await expect(e.load({ url, mmproj, fetch: magic })).rejects.toThrow(/mmproj-f16\.gguf: not a GGUF file/);
    const wrongArch = editing('text-q4_k_m.gguf', (body, start, total) => {
      // general.architecture "llama" -> "llamb": not the text model the loader knows.
      const b = body.slice();
      const at = new TextDecoder('latin1').decode(b).indexOf('llama');
      if (start === 0 && at > 0) b[at + 4] = 0x62;
      return { body: b, total };
    });
    await expect(e.load({ url, mmproj, fetch: wrongArch })).rejects.toThrow(FormatError);
    await e.dispose();
  });
});
