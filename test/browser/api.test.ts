/**
 * The public API in its default shape: `loadPixtral` starts a module Web Worker and talks to it
 * through comlink. Checks streaming answers, progress, typed errors across the worker boundary,
 * transfer of an ImageBitmap, dispose; leaving a stream early, a worker that stops, abort
 * reasons, detached ImageData and bad requests refused on the main thread.
 */
import { describe, expect, it } from 'vitest';
import { loadPixtral, AbortError, ContextLengthError, DisposedError, FormatError, ImageError, type ChatMessage, type LoadProgress, type PixtralModel } from '../../src/index.js';

const SAMPLES = '/shared/models/pixtral-tiny-screens/samples';

describe('loadPixtral (worker)', () => {
  it('streams an answer from a worker, keeps error classes, and disposes', async () => {
    const progress: LoadProgress[] = [];
    const model = await loadPixtral({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 128, dtype: 'q4', onProgress: (p) => progress.push(p) });
    try {
      expect(model.info.dtype).toBe('q4');
      expect(model.info.maxContext).toBe(128);
      const total = progress.at(-1)!.totalBytes;
      expect(total).toBeGreaterThan(0);
      for (let i = 1; i < progress.length; i++) {
        if (progress[i]!.phase === progress[i - 1]!.phase) expect(progress[i]!.loadedBytes).toBeGreaterThanOrEqual(progress[i - 1]!.loadedBytes);
      }

      const bitmap = await createImageBitmap(await (await fetch(`${SAMPLES}/screen_02.png`)).blob());
      const width = bitmap.width;
      const stream = model.chat([{ role: 'user', content: [{ type: 'image', image: bitmap }, { type: 'text', text: 'What color is the box?' }] }], { maxTokens: 4 });
      const deltas: string[] = [];
      for await (const d of stream) deltas.push(d);
      const stats = await stream.stats;
      expect(deltas.join('')).toBe('green');
      expect(stats.imageTokens).toBe(8 * 9);
      expect(stats.generatedTokens).toBeGreaterThan(0);
      expect(stats.decodeTokensPerSecond).toBeGreaterThan(0);
      // The caller's bitmap was not detached by the hand-over (a detached one reads 0 x 0).
      expect(width).toBeGreaterThan(0);
      expect(bitmap.width).toBe(width);

      const err = await model.complete([{ role: 'user', content: 'x '.repeat(300) }]).catch((e) => e);
      expect(err).toBeInstanceOf(ContextLengthError);
      expect((err as ContextLengthError).maxTokens).toBe(128);
    } finally {
      await model.dispose();
    }
    expect(() => model.chat([{ role: 'user', content: 'hi' }])).toThrow(DisposedError);
  });
});

/** Settles with `p`, or with the string 'hung' if `p` has not settled after `ms` (a hang guard, not a timing check). */
function settles<T>(p: Promise<T>, ms = 60_000): Promise<T | 'hung'> {
  return Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))]);
}

async function screen(name: string): Promise<Blob> {
  return (await fetch(`${SAMPLES}/${name}`)).blob();
}

/** Temperature 10 with seed 2 makes the demo model ramble for more than a few tokens. */
const RAMBLE = { maxTokens: 16, temperature: 10, seed: 2 };

describe('loadPixtral (worker): leaving early, failures, bad input', () => {
  it('breaking out of for await stops the generation and frees the queue', async () => {
    const model = await loadPixtral({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 128 });
    try {
      const img = await screen('screen_05.png');
      const msgs: ChatMessage[] = [{ role: 'user', content: [{ type: 'image', image: img }, { type: 'text', text: 'What digit is shown?' }] }];
      const control = await model.complete(msgs, RAMBLE);
      expect(control.stats.generatedTokens).toBeGreaterThan(8);
      await model.reset();
      const stream = model.chat(msgs, RAMBLE);
      for await (const _ of stream) break;
      const stats = await stream.stats;
      // The abort crosses to the worker while it keeps decoding: a few steps, not the whole run.
      expect(stats.finishReason).toBe('abort');
      expect(stats.generatedTokens).toBeLessThan(control.stats.generatedTokens);
      // The queue is free: the next call answers.
      const next = await model.complete([{ role: 'user', content: [{ type: 'image', image: img }, { type: 'text', text: 'What color is the box?' }] }], { maxTokens: 4 });
      expect(next.stats.generatedTokens).toBeGreaterThan(0);
      // The image crossed to the worker again (a new Blob there): recognised by its bytes.
      expect(next.stats.imagesPreprocessed).toBe(0);
    } finally {
      await model.dispose();
    }
  });

  it('a worker that stops turns pending and later calls into DisposedError', async () => {
    const workers: Worker[] = [];
    const RealWorker = globalThis.Worker;
    globalThis.Worker = class extends RealWorker {
      constructor(...a: ConstructorParameters<typeof Worker>) {
        super(...a);
        workers.push(this);
      }
    };
    let model: PixtralModel;
    try {
      model = await loadPixtral({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 128 });
    } finally {
      globalThis.Worker = RealWorker;
    }
    expect(workers.length).toBe(1);
    const img = await screen('screen_05.png');
    const stream = model.chat([{ role: 'user', content: [{ type: 'image', image: img }, { type: 'text', text: 'What digit is shown?' }] }], { ...RAMBLE, maxTokens: 100 });
    // The worker goes away mid-generation as a crashed one would: it sends nothing more.
    const reading = (async () => {
      for await (const _ of stream) workers[0]!.terminate();
    })();
    const pending = await settles(reading.then(() => 'finished', (e: unknown) => e));
    expect(pending).toBeInstanceOf(DisposedError);
    expect((pending as Error).message).toMatch(/worker stopped/);
    const later = await settles(model.complete([{ role: 'user', content: 'hi' }]).catch((e: unknown) => e));
    expect(later).toBeInstanceOf(DisposedError);
    await model.dispose(); // does not wait for the dead worker
  });

  it('keeps the abort reason, settles on a detached ImageData, refuses bad requests before the worker', async () => {
    const model = await loadPixtral({ url: '/scratch/models/pixtral-tiny-screens-q4/', maxContext: 128 });
    try {
      const img = await screen('screen_00.png');
      const ask: ChatMessage[] = [{ role: 'user', content: [{ type: 'image', image: img }, { type: 'text', text: 'What color is the box?' }] }];
      // Aborted after the call started, so the reason has to cross to the worker and back.
      const ctl = new AbortController();
      const aborted = model.complete(ask, { signal: ctl.signal });
      ctl.abort(new Error('user left'));
      const e = await settles(aborted.catch((x: unknown) => x));
      expect(e).toBeInstanceOf(AbortError);
      expect((e as Error).message).toMatch(/user left/);

      const d = new ImageData(32, 32);
      structuredClone(d.data.buffer, { transfer: [d.data.buffer] });
      const detached = await settles(model.complete([{ role: 'user', content: [{ type: 'image', image: d }] }], { signal: AbortSignal.timeout(120_000) }).catch((x: unknown) => x));
      expect(detached).toBeInstanceOf(ImageError);
      expect((detached as Error).message).toMatch(/detached/);

      const sys = await model.complete([{ role: 'system', content: [{ type: 'image', image: img }] }, ...ask]).catch((x: unknown) => x);
      expect(sys).toBeInstanceOf(FormatError);
      expect((sys as Error).message).toMatch(/no images in system or assistant messages/);
      const shape = await model.complete([{ role: 'user' } as ChatMessage]).catch((x: unknown) => x);
      expect(shape).toBeInstanceOf(FormatError);
      expect((shape as Error).message).toMatch(/messages\[0\]\.content/);

      const ids = Uint32Array.of(1, 3, 1784, 1044, 1278, 4);
      const g = await model.generate({ inputIds: ids, maxNewTokens: 2, temperature: 0 });
      expect(g.tokenIds.length).toBeGreaterThan(0);
      // Still answering after all that.
      expect((await model.complete(ask, { maxTokens: 4 })).text).toBe('orange');
    } finally {
      await model.dispose();
    }
  });

  it('loadPixtral({}) says the url is missing', async () => {
    await expect(loadPixtral({} as never)).rejects.toThrow(/the model url is missing/);
  });
});
