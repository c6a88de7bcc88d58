/**
 * The engine (in-thread) against bad and unusual requests, on the trained demo model
 * (pixtral-tiny-screens, f32): images outside user messages, follow-up prompts built from text
 * only, the image cache across turns, request shapes, `dispose()` during a generation, several
 * full-size images in one prompt, and image grouping checked against the two_images golden.
 * Each test sets up what it needs (its own engine where it disposes one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type ChatMessage } from '../../src/engine/index.js';
import { AbortError, DeviceLostError, DisposedError, FormatError, ImageError, LimitError } from '../../src/errors.js';
import { loadCase, tol } from '../golden/cases.js';
import { expectClose } from '../helpers/close.js';

const SAMPLES = '/shared/models/pixtral-tiny-screens/samples';
const MODEL = '/scratch/models/pixtral-tiny-screens-f32/';
let engine: Engine;

async function png(name: string): Promise<Blob> {
  return (await fetch(`${SAMPLES}/${name}`)).blob();
}

function ask(image: Blob | ImageData, question: string): ChatMessage[] {
  return [{ role: 'user', content: [{ type: 'image', image }, { type: 'text', text: question }] }];
}

async function answer(e: Engine, msgs: ChatMessage[], opts = {}) {
  let text = '';
  const r = await e.chat(msgs, { maxTokens: 4, ...opts }, (d) => (text += d));
  return { text, stats: r.stats };
}

/** Counts the browser's image decodes while `fn` runs (the real createImageBitmap is called). */
async function countDecodes<T>(fn: () => Promise<T>): Promise<{ result: T; decodes: number }> {
  const real = globalThis.createImageBitmap;
  let decodes = 0;
  globalThis.createImageBitmap = ((...a: Parameters<typeof createImageBitmap>) => (decodes++, real(...a))) as typeof createImageBitmap;
  try {
    return { result: await fn(), decodes };
  } finally {
    globalThis.createImageBitmap = real;
  }
}

beforeAll(async () => {
  engine = new Engine();
  await engine.load({ url: MODEL, maxContext: 512 });
});

afterAll(() => engine?.dispose());

describe('chat requests', () => {
  it('refuses an image in a system message with a FormatError before any image work', async () => {
    const img = await png('screen_02.png');
    // The system "image" is not even an image: had it been decoded first, this would be an ImageError.
    const junk = new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' });
    const msgs: ChatMessage[] = [{ role: 'system', content: [{ type: 'image', image: junk }] }, ...ask(img, 'What color is the box?')];
    const { result: err, decodes } = await countDecodes(() => answer(engine, msgs).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(/messages\[0\]\.content\[0\] is an image in a system message: Mistral's chat formats have no images in system or assistant messages/);
    expect(decodes).toBe(0);
    // The same conversation with a text system prompt answers.
    const ok = await answer(engine, [{ role: 'system', content: 'Answer in one word.' }, ...ask(img, 'What color is the box?')]);
    expect(ok.stats.generatedTokens).toBeGreaterThan(0);
  });

  it('builds a follow-up prompt from the messages text only, still reusing the KV cache', async () => {
    const img = await png('screen_03.png');
    const q = 'What color is the box?';
    const full = await answer(engine, ask(img, q));
    expect(full.text).toBe('green');
    // Cut by a stop string, the answer the user saw ("g") is not what the model generated
    // ("green"): the follow-up must encode the text "g", not the generated ids.
    const cut = await answer(engine, ask(img, q), { stop: 'r' });
    expect(cut.text).toBe('g');
    const follow: ChatMessage[] = [...ask(img, q), { role: 'assistant', content: cut.text }, { role: 'user', content: 'What digit is shown?' }];
    const cached = await answer(engine, follow);
    await engine.reset();
    const fresh = await answer(engine, follow);
    expect(fresh.stats.reusedTokens).toBe(0);
    expect(cached.stats.promptTokens).toBe(fresh.stats.promptTokens);
    expect(cached.text).toBe(fresh.text);
    const ids = (t: string) => engine.tokenize(t);
    // v3 layout: first prompt, answer, </s>, [INST], question, [/INST].
    expect(cached.stats.promptTokens).toBe(cut.stats.promptTokens + (await ids('g')).length + 2 + (await ids('What digit is shown?')).length + 1);
    // Reuse: the whole first prompt came from the cache.
    expect(cached.stats.reusedTokens).toBeGreaterThanOrEqual(cut.stats.promptTokens);
    expect(cached.stats.imagesEncoded).toBe(0);
  });

  it('does no image work for an image seen in an earlier turn (same Blob, or the same bytes)', async () => {
    await engine.reset();
    const img = await png('screen_04.png');
    const first = await countDecodes(() => answer(engine, ask(img, 'What color is the box?')));
    expect(first.decodes).toBe(1);
    expect(first.result.stats.imagesPreprocessed).toBe(1);
    const follow: ChatMessage[] = [...ask(img, 'What color is the box?'), { role: 'assistant', content: first.result.text }, { role: 'user', content: 'What digit is shown?' }];
    const second = await countDecodes(() => answer(engine, follow));
    expect(second.decodes).toBe(0);
    expect(second.result.stats.imagesPreprocessed).toBe(0);
    expect(second.result.stats.imagesEncoded).toBe(0);
    // A different Blob object with the same bytes (what a worker receives each turn) hits too.
    const copy = new Blob([await img.arrayBuffer()], { type: img.type });
    const third = await countDecodes(() => answer(engine, ask(copy, 'What color is the box?')));
    expect(third.decodes).toBe(0);
    expect(third.result.stats.imagesPreprocessed).toBe(0);
    expect(third.result.text).toBe(first.result.text);
  });

  it('validates the request shape, naming the message and part', async () => {
    const img = await png('screen_00.png');
    const bad = async (msgs: unknown, re: RegExp, opts = {}) => {
      const e = await engine.chat(msgs as ChatMessage[], opts).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FormatError);
      expect((e as Error).message).toMatch(re);
    };
    await bad([{ role: 'user' }], /messages\[0\]\.content must be a string or an array/);
    await bad([{ role: 'user', content: null }], /messages\[0\]\.content .*got null/);
    await bad([{ role: 'user', content: 7 }], /messages\[0\]\.content .*got number 7/);
    await bad({ role: 'user', content: 'hi' }, /messages must be an array/);
    await bad([{ role: 'user', content: [{ type: 'video', url: 'x' }] }], /messages\[0\]\.content\[0\] has an unknown part type string "video"/);
    await bad(ask(img, 'What color is the box?'), /stop\[0\] is an empty string/, { stop: [''] });
    // A stop string is one string ("xr"), not the characters "x" and "r".
    const full = await answer(engine, ask(img, 'What color is the box?'));
    expect(full.text).toBe('orange');
    const s = await answer(engine, ask(img, 'What color is the box?'), { stop: 'xr' });
    expect(s.text).toBe('orange');
    // The engine still answers afterwards.
    expect((await answer(engine, ask(img, 'What digit is shown?'))).text).toBe('0');
  });

  it('keeps the abort reason in the AbortError', async () => {
    const img = await png('screen_00.png');
    const e = await engine.chat(ask(img, 'What color is the box?'), { signal: AbortSignal.abort(new Error('user left')) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortError);
    expect((e as Error).message).toMatch(/user left/);
    expect(((e as Error).cause as Error).message).toBe('user left');
  });

  it('refuses a detached ImageData with an ImageError', async () => {
    const d = new ImageData(64, 64);
    structuredClone(d.data.buffer, { transfer: [d.data.buffer] });
    const e = await answer(engine, ask(d, 'What color is the box?')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ImageError);
    expect((e as Error).message).toMatch(/ImageData of 64x64 has 0 bytes of pixels .* detached/);
  });

  it('answers a question about two full-size images (encoded in groups that fit the budget)', async () => {
    const info = engine.info();
    expect(info.maxPatches).toBe(64); // one 128 x 128 image of 16-pixel patches
    // 157x146 and 216x193 pixels: both resize to 128 px wide, 8 x 8 patches each.
    const a = await png('screen_02.png');
    const b = await png('screen_08.png');
    const r = await answer(engine, [{ role: 'user', content: [{ type: 'image', image: a }, { type: 'image', image: b }, { type: 'text', text: 'What color is the box?' }] }]);
    expect(r.stats.imagesEncoded).toBe(2);
    expect(r.stats.imageTokens).toBe(2 * 8 * 9);
    expect(r.stats.generatedTokens).toBeGreaterThan(0);
  });
});

describe('generate requests', () => {
  it('accepts a Uint32Array of ids and refuses [IMG] tokens without an image and NaN pixels', async () => {
    const ids = Uint32Array.of(1, 3, 1784, 1044, 1278, 4);
    const r = await engine.generate({ inputIds: ids, maxNewTokens: 2, temperature: 0 });
    const r2 = await engine.generate({ inputIds: Array.from(ids), maxNewTokens: 2, temperature: 0 });
    expect(r.tokenIds).toEqual(r2.tokenIds);
    const e1 = await engine.generate({ inputIds: [1, 3, 10, 13, 4] }).catch((x: unknown) => x);
    expect(e1).toBeInstanceOf(FormatError);
    expect((e1 as Error).message).toMatch(/inputIds\[2\] is an image token \(10\) but no images were given/);
    const pixels = new Float32Array(3 * 16 * 16).fill(NaN);
    const e2 = await engine.generate({ inputIds: [1, 3, 10, 13, 4], images: [{ pixels, height: 16, width: 16 }] }).catch((x: unknown) => x);
    expect(e2).toBeInstanceOf(FormatError);
    expect((e2 as Error).message).toMatch(/images\[0\]\.pixels\[0\] is NaN/);
  });

  it('matches the two_images golden with the images encoded in two passes (maxPatches 15)', async () => {
    const e = new Engine();
    try {
      // The tall image has 5 x 3 = 15 patches, the wide one 2 x 6 = 12: a budget of 15 splits them.
      const info = await e.load({ url: '/scratch/models/pixtral-tiny-a-f32/', maxContext: 64, maxPatches: 15 });
      expect(info.maxPatches).toBe(15);
      const c = await loadCase('pixtral-tiny-a', 'two_images');
      const images = c.json.images!.map((im) => {
        const px = c.inputs[im.pixel_values]!;
        const [, height, width] = px.shape as [number, number, number];
        return { pixels: px.data as Float32Array, height, width };
      });
      const r = await e.generate({ inputIds: c.json.input_ids, images, maxNewTokens: 8, temperature: 0, returnLogits: true });
      expect(r.stats.imagesEncoded).toBe(2);
      // Strict golden tolerance (float32 vs float64 reference): per-image attention makes the
      // grouped encode the same computation as the single pass.
      expectClose(r.logits!, c.expected.logits!.data, tol(c, 'logits', true), 'two_images logits, two encoder passes');
      expect(r.tokenIds).toEqual(c.json.greedy_tokens);
    } finally {
      await e.dispose();
    }
  });
});

describe('load options and dispose', () => {
  it('refuses maxContext NaN, an unknown kvCache and a missing url before allocating anything', async () => {
    const e = new Engine();
    try {
      await expect(e.load({ url: MODEL, maxContext: NaN })).rejects.toThrow(LimitError);
      await expect(e.load({ url: MODEL, kvCache: 'q8' as 'f16' })).rejects.toThrow(/kvCache must be "f16" or "f32"/);
      await expect(e.load({} as never)).rejects.toThrow(/the model url is missing/);
    } finally {
      await e.dispose();
    }
  });

  it('dispose() during a generation stops it within one decode step and frees the model', async () => {
    const e = new Engine();
    await e.load({ url: MODEL, maxContext: 256 });
    const img = await png('screen_05.png');
    // Temperature 10 and this seed make the demo model ramble instead of answering in one
    // word: the control run shows how long the generation runs when nobody disposes.
    const opts = { maxTokens: 16, temperature: 10, seed: 2 };
    const control = await e.chat(ask(img, 'What digit is shown?'), opts);
    expect(control.stats.generatedTokens).toBeGreaterThan(8);
    await e.reset();
    let deltas = 0;
    let disposing: Promise<void> | null = null;
    const run = e.chat(ask(img, 'What digit is shown?'), opts, () => {
      deltas++;
      disposing ??= e.dispose();
    });
    const err = await run.catch((x: unknown) => x);
    expect(err).toBeInstanceOf(DisposedError);
    expect(deltas).toBeLessThanOrEqual(2);
    await disposing;
    expect(() => e.info()).toThrow(DisposedError);
  });

  it('a lost device fails the running generation and every later call with DeviceLostError', async () => {
    const e = new Engine();
    await e.load({ url: MODEL, maxContext: 256 });
    // The engine's own device, destroyed as a driver reset would lose it.
    const device = (e as unknown as { loaded: { gpu: { device: GPUDevice } } }).loaded.gpu.device;
    const img = await png('screen_05.png');
    try {
      const running = await e.chat(ask(img, 'What digit is shown?'), { maxTokens: 16, temperature: 10, seed: 2 }, () => device.destroy()).catch((x: unknown) => x);
      expect(running).toBeInstanceOf(DeviceLostError);
      const later = await e.chat(ask(img, 'What color is the box?')).catch((x: unknown) => x);
      expect(later).toBeInstanceOf(DeviceLostError);
      expect(() => e.info()).toThrow(DeviceLostError);
    } finally {
      await e.dispose();
    }
  });
});
